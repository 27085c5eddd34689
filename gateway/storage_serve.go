package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/hourglasshq/hourglass/gateway/storage"
)

// checkStorage reports what is wrong with the storage (nil when usable or
// when it cannot tell), for /readyz.
func (g *Gateway) checkStorage(ctx context.Context) error {
	if c, ok := g.storage.(storage.Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

// redirectOutput answers a download with a redirect to a presigned URL of
// the stored object when Config.StorageRedirect is on and the storage can
// presign. It reports whether it answered; on any failure the caller
// proxies the bytes as usual.
func (g *Gateway) redirectOutput(w http.ResponseWriter, r *http.Request, o Output) bool {
	p, ok := g.storage.(storage.Presigner)
	if !ok || g.cfg.StorageRedirect <= 0 {
		return false
	}
	u, err := p.PresignGet(r.Context(), o.StorageKey, g.cfg.StorageRedirect)
	if err != nil {
		g.log.Warn("gateway: presign output; proxying instead", "key", o.StorageKey, "err", err)
		return false
	}
	w.Header().Set("Cache-Control", "private, no-store") // the URL expires
	http.Redirect(w, r, u, http.StatusFound)
	return true
}

// checkStorageAtStart logs what is wrong with a storage that opened but
// does not work (no such bucket, credentials refused, endpoint down). The
// gateway starts anyway: /readyz answers 503 with the same message until
// the storage works, so an orchestrator keeps traffic away and the
// replica heals by itself.
func checkStorageAtStart(ctx context.Context, s storage.Storage, log *slog.Logger) {
	c, ok := s.(storage.Checker)
	if !ok {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := c.Check(cctx); err != nil {
		if log == nil {
			log = slog.Default()
		}
		log.Error("gateway: storage not usable; /readyz stays not ready until it is", "err", err)
	}
}
