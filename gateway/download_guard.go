package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// The output download client fetches the URLs Magic Hour (or whatever
// answers as the upstream) names in a project's downloads. A compromised
// or impersonated upstream could name internal addresses, so the client
// refuses them like the callback client does, except on the configured
// upstream's own hosts (which, with the embedded emulator and in tests,
// are on loopback). It pins the address it checked (no DNS rebinding
// between check and connect), uses no proxy, and follows redirects only
// within the same host.

// dialFunc is net.Dialer.DialContext's shape.
type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// guardedDial resolves address, refuses every special-purpose address and
// dials the first public one by IP.
func guardedDial(dial dialFunc, resolver *net.Resolver) dialFunc {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		var addrs []netip.Addr
		if ip, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{ip}
		} else if addrs, err = resolver.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, err
		}
		var refused error
		for _, ip := range addrs {
			if err := checkAddr(ip); err != nil {
				refused = err
				continue
			}
			return dial(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		}
		if refused == nil {
			refused = fmt.Errorf("%s does not resolve", host)
		}
		return nil, fmt.Errorf("output download from %s refused: %w", host, refused)
	}
}

// hostKey normalizes a URL's host for comparisons: lower case, with the
// scheme's default port.
func hostKey(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// hostRouter sends requests for trusted hosts through direct and the rest
// through guarded.
type hostRouter struct {
	trusted         map[string]bool
	direct, guarded http.RoundTripper
}

func (h *hostRouter) RoundTrip(r *http.Request) (*http.Response, error) {
	if h.trusted[hostKey(r.URL)] {
		return h.direct.RoundTrip(r)
	}
	return h.guarded.RoundTrip(r)
}

// errRedirectHost refuses a redirect to another host.
var errRedirectHost = errors.New("redirect to another host refused")

// newDownloadClient returns the output download client. trustedURLs are
// the upstream's own base URLs: their hosts are reached even when they
// are internal. dial is the real dialer (tests pass one that must not be
// called).
func newDownloadClient(trustedURLs []string, dial dialFunc, resolver *net.Resolver) *http.Client {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	transport := func(d dialFunc) *http.Transport {
		return &http.Transport{
			DialContext:           d,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: time.Minute,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		}
	}
	trusted := map[string]bool{}
	for _, s := range trustedURLs {
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			trusted[hostKey(u)] = true
		}
	}
	return &http.Client{
		Transport: &hostRouter{trusted: trusted, direct: transport(dial), guarded: transport(guardedDial(dial, resolver))},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			if hostKey(req.URL) != hostKey(via[0].URL) {
				return fmt.Errorf("%w: %s to %s", errRedirectHost, via[0].URL.Host, req.URL.Host)
			}
			return nil
		},
	}
}
