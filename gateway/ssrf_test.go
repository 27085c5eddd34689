package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// ssrfForms are the IPv4-embedding IPv6 forms and special ranges that the
// first guard let through (issue 11 item 4), with the other registries'
// entries; all must be refused.
var ssrfForms = []string{
	"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::10.0.0.1", // NAT64 of loopback, metadata, private
	"64:ff9b:1::1", "64:ff9b:1::808:808", // local-use NAT64
	"::ffff:0:7f00:1", "::ffff:0:a9fe:a9fe", // IPv4-translated
	"::ffff:127.0.0.1", "::ffff:169.254.169.254", // IPv4-mapped
	"::7f00:1", "::a9fe:a9fe", "::10.1.2.3", // IPv4-compatible
	"2002:7f00:1::", "2002:a9fe:a9fe::1", "2002:c0a8:101::", // 6to4 of loopback, metadata, 192.168.1.1
	"2001:0:4136:e378:8000:63bf:80ff:fffe",    // Teredo, client 127.0.0.1 (XOR'd)
	"2001:0:a9fe:a9fe::1", "2001:0:808:808::", // Teredo, server metadata / any Teredo
	"fec0::1", "feff::1", "fe80::1%eth0", "fc00::1", "fd12::1", "ff02::1",
	"::", "::1", "100::1", "2001:db8::1", "3fff::1", "5f00::1", "2620:4f:8000::1", "2001:2::1",
	"4000::1", "e000::1", "1::1", // outside 2000::/3
	"240.0.0.1", "255.255.255.255", "250.1.2.3", "224.0.0.1", "239.255.255.250",
	"0.1.2.3", "10.0.0.1", "100.64.0.1", "127.0.0.1", "169.254.169.254", "172.16.0.1", "192.0.0.8",
	"192.0.2.1", "192.31.196.1", "192.52.193.1", "192.88.99.1", "192.168.1.1", "192.175.48.1",
	"198.18.0.1", "198.51.100.1", "203.0.113.1",
}

func TestSSRFRanges(t *testing.T) {
	t.Parallel()
	for _, s := range ssrfForms {
		ip := netip.MustParseAddr(s)
		if err := checkAddr(ip); err == nil || !errors.Is(err, errPrivateAddress) {
			t.Errorf("checkAddr(%s) = %v, want a refusal", s, err)
		}
	}
	for _, s := range []string{"8.8.8.8", "1.1.1.1", "2606:4700::1111", "2a00:1450:4001::200e",
		"64:ff9b::808:808", "::ffff:8.8.8.8", "2002:808:808::1", "192.0.1.1", "100.128.0.1"} {
		if err := checkAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("checkAddr(%s) = %v, want allowed (public)", s, err)
		}
	}
	// The refusal names the embedded address.
	if err := checkAddr(netip.MustParseAddr("2001:0:4136:e378:8000:63bf:80ff:fffe")); err == nil || !strings.Contains(err.Error(), "client 127.0.0.1") {
		t.Errorf("Teredo refusal does not name the client: %v", err)
	}
}

// failDial fails the test if anything is dialed.
func failDial(t *testing.T) dialFunc {
	return func(_ context.Context, _, address string) (net.Conn, error) {
		t.Errorf("dialed %s", address)
		return nil, errors.New("test: must not dial")
	}
}

// The output download client refuses internal addresses without dialing,
// except on the upstream's own host.
func TestDownloadClientRefusesInternal(t *testing.T) {
	t.Parallel()
	c := newDownloadClient([]string{"http://127.0.0.1:7777"}, failDial(t), nil)
	for _, s := range []string{"127.0.0.1:7778", "[::1]:7777", "[64:ff9b::7f00:1]", "[2002:a9fe:a9fe::]", "[::ffff:10.0.0.1]", "169.254.169.254", "[fec0::1]", "240.0.0.1"} {
		resp, err := c.Get("http://" + s + "/out.png")
		if err == nil {
			resp.Body.Close()
		}
		if err == nil || !errors.Is(err, errPrivateAddress) {
			t.Errorf("GET http://%s: %v, want a refusal", s, err)
		}
	}
	dialed := ""
	c = newDownloadClient([]string{"http://127.0.0.1:7777"}, func(_ context.Context, _, address string) (net.Conn, error) {
		dialed = address
		return nil, errors.New("test: stop here")
	}, nil)
	if _, err := c.Get("http://127.0.0.1:7777/out.png"); err == nil || dialed != "127.0.0.1:7777" {
		t.Fatalf("the upstream's own host: dialed %q, err %v", dialed, err)
	}
}

// Redirects are followed within the host only.
func TestDownloadClientRedirects(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/other":
			http.Redirect(w, r, "http://127.0.0.2:9/x", http.StatusFound)
		default:
			_, _ = w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()
	c := newDownloadClient([]string{srv.URL}, nil, nil)
	resp, err := c.Get(srv.URL + "/same")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("same-host redirect: %v", err)
	}
	resp.Body.Close()
	_, err = c.Get(srv.URL + "/other")
	if err == nil || !errors.Is(err, errRedirectHost) {
		t.Fatalf("redirect to another host: %v", err)
	}
}
