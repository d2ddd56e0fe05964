// Package packageurl is the subset of package URLs (pkg:type/namespace/name@version?q=v)
// that BuildKit uses for image references in provenance and SBOM data.
package packageurl

import (
	"errors"
	"net/url"
	"sort"
	"strings"
)

const (
	TypeDocker = "docker"
	TypeOCI    = "oci"
)

// Qualifier is one key=value pair after the "?".
type Qualifier struct {
	Key   string
	Value string
}

// Qualifiers keep their order; ToString sorts them by key as the spec asks.
type Qualifiers []Qualifier

// PackageURL is a parsed package URL.
type PackageURL struct {
	Type       string
	Namespace  string
	Name       string
	Version    string
	Qualifiers Qualifiers
	Subpath    string
}

// NewPackageURL builds a PackageURL from its parts.
func NewPackageURL(purlType, namespace, name, version string, qualifiers Qualifiers, subpath string) *PackageURL {
	return &PackageURL{Type: purlType, Namespace: namespace, Name: name, Version: version, Qualifiers: qualifiers, Subpath: subpath}
}

func escapeSegments(s string) string {
	parts := strings.Split(s, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// ToString renders the package URL in its canonical form.
func (p PackageURL) ToString() string {
	var b strings.Builder
	b.WriteString("pkg:")
	b.WriteString(strings.ToLower(p.Type))
	b.WriteString("/")
	if p.Namespace != "" {
		b.WriteString(escapeSegments(p.Namespace))
		b.WriteString("/")
	}
	b.WriteString(url.PathEscape(p.Name))
	if p.Version != "" {
		b.WriteString("@")
		b.WriteString(url.PathEscape(p.Version))
	}
	if len(p.Qualifiers) > 0 {
		qs := append(Qualifiers(nil), p.Qualifiers...)
		sort.SliceStable(qs, func(i, j int) bool { return qs[i].Key < qs[j].Key })
		parts := make([]string, 0, len(qs))
		for _, q := range qs {
			if q.Value == "" {
				continue
			}
			parts = append(parts, strings.ToLower(q.Key)+"="+url.QueryEscape(q.Value))
		}
		if len(parts) > 0 {
			b.WriteString("?")
			b.WriteString(strings.Join(parts, "&"))
		}
	}
	if p.Subpath != "" {
		b.WriteString("#")
		b.WriteString(escapeSegments(strings.Trim(p.Subpath, "/")))
	}
	return b.String()
}

func (p PackageURL) String() string { return p.ToString() }

// FromString parses a package URL.
func FromString(purl string) (PackageURL, error) {
	rest, ok := strings.CutPrefix(purl, "pkg:")
	if !ok {
		return PackageURL{}, errors.New("purl scheme is not \"pkg\": " + purl)
	}
	var p PackageURL
	if i := strings.LastIndex(rest, "#"); i >= 0 {
		sub, err := url.PathUnescape(rest[i+1:])
		if err != nil {
			return PackageURL{}, err
		}
		p.Subpath = strings.Trim(sub, "/")
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, "?"); i >= 0 {
		for _, kv := range strings.Split(rest[i+1:], "&") {
			if kv == "" {
				continue
			}
			k, v, _ := strings.Cut(kv, "=")
			val, err := url.QueryUnescape(v)
			if err != nil {
				return PackageURL{}, err
			}
			p.Qualifiers = append(p.Qualifiers, Qualifier{Key: strings.ToLower(k), Value: val})
		}
		rest = rest[:i]
	}
	rest = strings.Trim(rest, "/")
	typ, path, ok := strings.Cut(rest, "/")
	if !ok || typ == "" {
		return PackageURL{}, errors.New("purl has no type or name: " + purl)
	}
	p.Type = strings.ToLower(typ)
	if i := strings.LastIndex(path, "@"); i >= 0 {
		v, err := url.PathUnescape(path[i+1:])
		if err != nil {
			return PackageURL{}, err
		}
		p.Version = v
		path = path[:i]
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil {
			return PackageURL{}, err
		}
		segs[i] = u
	}
	p.Name = segs[len(segs)-1]
	if p.Name == "" {
		return PackageURL{}, errors.New("purl has no name: " + purl)
	}
	p.Namespace = strings.Join(segs[:len(segs)-1], "/")
	return p, nil
}
