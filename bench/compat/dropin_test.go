package compat

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/gateway"
	"github.com/hourglasshq/hourglass/magichour"
)

// TestOfficialNodeClientThroughGateway runs dropin.js: the npm magic-hour
// client, pointed at a gateway (SQLite, backed by the in-process emulator
// with its webhooks wired to the gateway) with a tenant key, creates jobs
// of every tool, polls them to complete and downloads the gateway's
// stored copies. Skips without node or bench/compat/node_modules.
func TestOfficialNodeClientThroughGateway(t *testing.T) {
	node := needNode(t)
	ctx := context.Background()
	dir := t.TempDir()
	front := httptest.NewUnstartedServer(nil)
	front.Start()
	defer front.Close()
	const secret = "whsec_dropin"
	const speed = 5000
	emu := emulator.NewServer(t, emulator.WithSpeed(speed), emulator.WithOutputSize(16<<10),
		emulator.WithWebhookURL(front.URL+"/hooks/magichour"), emulator.WithWebhookSecret(secret))
	up, err := magichour.NewClient(magichour.WithAPIKey(emu.APIKey), magichour.WithBaseURL(emu.URL))
	must(t, err)
	gw, err := gateway.Open(ctx, gateway.Options{DB: "sqlite://" + filepath.Join(dir, "gw.db"), StorageURL: filepath.Join(dir, "outputs"),
		Config: gateway.Config{Upstream: up, WebhookSecrets: []string{secret},
			Speed: speed, IdlePoll: 50 * time.Millisecond, MinPollInterval: 20 * time.Millisecond,
			MaxPollInterval: 200 * time.Millisecond, RetryBase: 20 * time.Millisecond, UpstreamRPS: -1}})
	must(t, err)
	defer gw.Close()
	front.Config.Handler = gw.Handler()
	tenantKey := gw.Keys().TenantKey

	runChecks(t, node, "dropin.js", front.URL, tenantKey, 4*time.Minute)
}
