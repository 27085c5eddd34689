package cli

import (
	"slices"
	"testing"
)

// Issue 11 item 7: --webhook-secret takes several values (repeated or
// comma-separated, also from the environment) so a rotation does not
// reject deliveries; --trusted-proxies takes addresses and CIDRs.
func TestServeHardeningFlags(t *testing.T) {
	t.Setenv("HOURGLASS_WEBHOOK_SECRET", "")
	cmd := newServeCmd()
	if err := cmd.Flags().Parse([]string{"--webhook-secret", "whsec_a", "--webhook-secret", "whsec_b,whsec_c", "--metrics-addr", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := cmd.Flags().GetStringSlice("webhook-secret"); !slices.Equal(got, []string{"whsec_a", "whsec_b", "whsec_c"}) {
		t.Fatalf("--webhook-secret: %q", got)
	}
	t.Setenv("HOURGLASS_WEBHOOK_SECRET", "whsec_x,whsec_y")
	cmd = newServeCmd()
	if err := cmd.Flags().Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := flagsFromEnv(cmd); err != nil {
		t.Fatal(err)
	}
	if got, _ := cmd.Flags().GetStringSlice("webhook-secret"); !slices.Equal(got, []string{"whsec_x", "whsec_y"}) {
		t.Fatalf("HOURGLASS_WEBHOOK_SECRET: %q", got)
	}
	ps, err := parsePrefixes([]string{"10.0.0.0/8", "127.0.0.1", "::1"})
	if err != nil || len(ps) != 3 || ps[1].Bits() != 32 || ps[2].Bits() != 128 {
		t.Fatalf("parsePrefixes: %v %v", ps, err)
	}
	if _, err := parsePrefixes([]string{"proxy.local"}); err == nil {
		t.Fatal("a name was taken as a proxy address")
	}
}
