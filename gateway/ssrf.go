package gateway

import (
	"errors"
	"fmt"
	"net/netip"
)

// The SSRF guard: which addresses the gateway may call on a tenant's
// behalf (callback URLs) or fetch outputs from. net/netip knows loopback,
// private and link-local but has no special-purpose registry, and no Go
// module on the proxy decodes the IPv4 embedded in IPv6 transition forms,
// so the table below is taken from the IANA registries:
//
//   - IPv4 Special-Purpose Address Registry,
//     https://www.iana.org/assignments/iana-ipv4-special-registry (RFC 6890)
//   - IPv6 Special-Purpose Address Registry,
//     https://www.iana.org/assignments/iana-ipv6-special-registry (RFC 6890)
//
// plus multicast, 240.0.0.0/4 (reserved), the deprecated site-local
// fec0::/10 (RFC 3879), and everything outside IPv6 global unicast
// 2000::/3. Every special-purpose entry is refused, including the few the
// registry marks globally reachable (anycast relays, AS112): nobody's
// callback lives there. IPv6 forms that carry an IPv4 address (mapped,
// translated, compatible, NAT64 64:ff9b::/96, 6to4, Teredo) are judged by
// that IPv4 address as if it were given plainly.

type specialRange struct {
	prefix netip.Prefix
	name   string
}

func ranges(pairs ...string) []specialRange {
	out := make([]specialRange, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, specialRange{netip.MustParsePrefix(pairs[i]), pairs[i+1]})
	}
	return out
}

var specialIPv4 = ranges(
	"0.0.0.0/8", "this network (RFC 791)",
	"10.0.0.0/8", "private (RFC 1918)",
	"100.64.0.0/10", "shared address space / carrier-grade NAT (RFC 6598)",
	"127.0.0.0/8", "loopback (RFC 1122)",
	"169.254.0.0/16", "link-local (RFC 3927)",
	"172.16.0.0/12", "private (RFC 1918)",
	"192.0.0.0/24", "IETF protocol assignments (RFC 6890)",
	"192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)",
	"192.31.196.0/24", "AS112-v4 (RFC 7535)",
	"192.52.193.0/24", "AMT (RFC 7450)",
	"192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)",
	"192.168.0.0/16", "private (RFC 1918)",
	"192.175.48.0/24", "direct delegation AS112 service (RFC 7534)",
	"198.18.0.0/15", "benchmarking (RFC 2544)",
	"198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)",
	"203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)",
	"224.0.0.0/4", "multicast (RFC 5771)",
	"255.255.255.255/32", "limited broadcast (RFC 919)", // before 240.0.0.0/4, which holds it
	"240.0.0.0/4", "reserved (RFC 1112)",
)

var specialIPv6 = ranges(
	"::/128", "unspecified (RFC 4291)",
	"::1/128", "loopback (RFC 4291)",
	"64:ff9b:1::/48", "local-use IPv4/IPv6 translation (RFC 8215)",
	"100::/64", "discard-only (RFC 6666)",
	"100:0:0:1::/64", "dummy IPv6 prefix (RFC 9780)",
	"2001::/23", "IETF protocol assignments, Teredo included (RFC 2928, RFC 4380)",
	"2001:db8::/32", "documentation (RFC 3849)",
	"2620:4f:8000::/48", "direct delegation AS112 service (RFC 7534)",
	"3fff::/20", "documentation (RFC 9637)",
	"5f00::/16", "segment routing SIDs (RFC 9602)",
	"fc00::/7", "unique-local (RFC 4193)",
	"fe80::/10", "link-local (RFC 4291)",
	"fec0::/10", "deprecated site-local (RFC 3879)",
	"ff00::/8", "multicast (RFC 4291)",
)

var (
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	mapped4        = netip.MustParsePrefix("::ffff:0:0/96")   // IPv4-mapped (RFC 4291)
	translated4    = netip.MustParsePrefix("::ffff:0:0:0/96") // IPv4-translated (RFC 2765)
	compatible4    = netip.MustParsePrefix("::/96")           // deprecated IPv4-compatible (RFC 4291)
	nat64          = netip.MustParsePrefix("64:ff9b::/96")    // well-known NAT64 prefix (RFC 6052)
	sixToFour      = netip.MustParsePrefix("2002::/16")       // 6to4 (RFC 3056)
	teredo         = netip.MustParsePrefix("2001::/32")       // Teredo (RFC 4380)
)

// errPrivateAddress is returned when a tenant's URL leads to an internal
// address.
var errPrivateAddress = errors.New("resolves to a loopback, private, link-local or other special-purpose address")

// addrError says which range refused an address.
type addrError struct {
	addr   netip.Addr
	reason string
}

func (e *addrError) Error() string {
	return fmt.Sprintf("%s is %s: not a public address", e.addr, e.reason)
}

func (e *addrError) Unwrap() error { return errPrivateAddress }

// v4At returns the IPv4 address in bytes [i, i+4) of a 16-byte address.
func v4At(b [16]byte, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{b[i], b[i+1], b[i+2], b[i+3]})
}

// checkAddr returns nil when ip may be called on a tenant's behalf, else
// an error naming the range that refused it.
func checkAddr(ip netip.Addr) error {
	if !ip.IsValid() {
		return &addrError{ip, "not a valid address"}
	}
	ip = ip.WithZone("")
	if ip.Is4() {
		for _, r := range specialIPv4 {
			if r.prefix.Contains(ip) {
				return &addrError{ip, r.name}
			}
		}
		return nil
	}
	b := ip.As16()
	embedded := func(v4 netip.Addr, form string) error {
		if err := checkAddr(v4); err != nil {
			return &addrError{ip, form + v4.String() + ", " + err.(*addrError).reason}
		}
		return nil
	}
	// The translation forms are judged by their IPv4 address alone (a
	// public one reached through DNS64/NAT64 is fine); Teredo and 6to4
	// also go through the table (Teredo is in 2001::/23, refused).
	switch {
	case mapped4.Contains(ip):
		return embedded(v4At(b, 12), "the IPv4-mapped form of ")
	case translated4.Contains(ip):
		return embedded(v4At(b, 12), "the IPv4-translated form of ")
	case ip == netip.IPv6Unspecified() || ip == netip.IPv6Loopback():
		// the registry entries below, not IPv4-compatible forms
	case compatible4.Contains(ip):
		return embedded(v4At(b, 12), "the deprecated IPv4-compatible form of ")
	case nat64.Contains(ip):
		return embedded(v4At(b, 12), "the NAT64 form of ")
	case sixToFour.Contains(ip):
		return embedded(v4At(b, 2), "the 6to4 form of ")
	case teredo.Contains(ip):
		// Server at bytes 4-7; the client's address is XOR'd in 12-15.
		if err := embedded(v4At(b, 4), "a Teredo address with server "); err != nil {
			return err
		}
		c := v4At(b, 12).As4()
		for i := range c {
			c[i] ^= 0xff
		}
		if err := embedded(netip.AddrFrom4(c), "a Teredo address with client "); err != nil {
			return err
		}
	}
	for _, r := range specialIPv6 {
		if r.prefix.Contains(ip) {
			return &addrError{ip, r.name}
		}
	}
	if !globalUnicast6.Contains(ip) {
		return &addrError{ip, "outside IPv6 global unicast 2000::/3"}
	}
	return nil
}

// publicAddr reports whether ip may be called on a tenant's behalf.
func publicAddr(ip netip.Addr) bool { return checkAddr(ip) == nil }
