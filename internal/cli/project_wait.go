package cli

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/magichour"
)

// toolForType finds the tool that made a project from the project's
// "type" (AI_IMAGE, FACE_SWAP, TALKING_PHOTO...): Magic Hour's documented
// types are the tool name in upper case with or without the "ai-" prefix
// and "-generator" suffix, with the kind in front (image-background-
// remover) or "-photo" behind (face-swap-photo). "" when none matches.
func toolForType(cat *catalog.Catalog, kind magichour.Kind, typ string) magichour.Tool {
	t := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(typ), "_", "-"))
	if t == "" {
		return ""
	}
	cands := []string{t, "ai-" + t, t + "-generator", "ai-" + t + "-generator", string(kind) + "-" + t, t + "-photo"}
	for _, c := range cands {
		for _, op := range cat.Creates() {
			if string(op.Kind) == string(kind) && op.Name == c {
				return magichour.Tool(op.Name)
			}
		}
	}
	return ""
}

// emulatorSpeedAt asks a loopback base URL whether it is an hourglass
// emulator and how fast it runs (GET /_emulator/stats), so that expected
// times and polling match it. 1 for anything else; the real API is never
// asked.
func emulatorSpeedAt(ctx context.Context, base string) float64 {
	u, err := url.Parse(base)
	if err != nil {
		return 1
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); !(host == "localhost" || ip != nil && ip.IsLoopback()) {
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/_emulator/stats", nil)
	if err != nil {
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 1
	}
	defer resp.Body.Close()
	var st struct {
		Speed float64 `json:"speed"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&st) != nil || st.Speed <= 1 {
		return 1
	}
	return st.Speed
}
