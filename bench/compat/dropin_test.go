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
	store, err := gateway.OpenStore(ctx, "sqlite://"+filepath.Join(dir, "gw.db"))
	must(t, err)
	defer store.Close()
	storage, err := gateway.NewFileStorage(filepath.Join(dir, "outputs"))
	must(t, err)
	gw, err := gateway.New(gateway.Config{Store: store, Storage: storage, Upstream: up, WebhookSecrets: []string{secret},
		Workers: 8, Speed: speed, IdlePoll: 50 * time.Millisecond, MinPollInterval: 20 * time.Millisecond,
		MaxPollInterval: 200 * time.Millisecond, RetryBase: 20 * time.Millisecond, UpstreamRPS: -1})
	must(t, err)
	defer gw.Close()
	front.Config.Handler = gw.Handler()
	_, tenantKey, _, err := gateway.Bootstrap(ctx, store)
	must(t, err)

	runChecks(t, node, "dropin.js", front.URL, tenantKey, 4*time.Minute)
}
