// Package archvariant reports the x86-64 micro-architecture level (v1..v4) of this CPU.
package archvariant

import "golang.org/x/sys/cpu"

// AMD64Variant returns "v1", "v2", "v3" or "v4" from the CPU feature flags.
func AMD64Variant() string {
	x := cpu.X86
	if !(x.HasCX16 && x.HasPOPCNT && x.HasSSE3 && x.HasSSE41 && x.HasSSE42 && x.HasSSSE3) {
		return "v1"
	}
	if !(x.HasAVX && x.HasAVX2 && x.HasBMI1 && x.HasBMI2 && x.HasFMA && x.HasOSXSAVE) {
		return "v2"
	}
	if !(x.HasAVX512F && x.HasAVX512BW && x.HasAVX512CD && x.HasAVX512DQ && x.HasAVX512VL) {
		return "v3"
	}
	return "v4"
}
