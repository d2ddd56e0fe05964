// Package fuseoverlayfs stands in for the fuse-overlayfs snapshotter, which this lab's
// BuildKit does not ship: BuildKit's "auto" snapshotter then falls back to native.
package fuseoverlayfs

import (
	"errors"

	"github.com/containerd/containerd/snapshots"
)

var errUnsupported = errors.New("fuse-overlayfs snapshotter is not built into this BuildKit")

// Supported always reports that fuse-overlayfs cannot be used.
func Supported(root string) error { return errUnsupported }

// NewSnapshotter always fails.
func NewSnapshotter(root string, opts ...interface{}) (snapshots.Snapshotter, error) {
	return nil, errUnsupported
}
