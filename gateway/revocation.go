package gateway

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Revocation (issue 11 item 6): dashboard sessions live in the database so
// that signing out, rotating a key and disabling a tenant end them; keys
// rotate with an overlap window; a disabled tenant's keys answer 403 (its
// jobs stay and finish); the admin reads and rotates tenants' callback
// secrets.
//
//	POST   /api/admin/tenants/{id}/rotate-key             {"overlap_seconds": 3600} -> {"api_key", "previous_key_valid_until"}
//	POST   /api/admin/tenants/{id}/disable                -> the tenant
//	POST   /api/admin/tenants/{id}/enable                 -> the tenant
//	GET    /api/admin/tenants/{id}/callback-secret        -> {"callback_secret"}
//	POST   /api/admin/tenants/{id}/rotate-callback-secret -> {"callback_secret"}
//	DELETE /api/admin/tenants/{id}/sessions               -> {"sessions_revoked": n}
//	POST   /api/admin/rotate-key                          {"overlap_seconds": 3600} -> {"admin_key", "previous_keys_valid_until"}
//	DELETE /api/admin/sessions                            every dashboard session -> {"sessions_revoked": n}

// MaxKeyOverlap bounds a rotation's overlap window.
const MaxKeyOverlap = 30 * 24 * time.Hour

// DefaultKeyOverlap is the overlap when a rotation does not say.
const DefaultKeyOverlap = time.Hour

func (g *Gateway) revocationRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/admin/tenants/{id}/rotate-key", g.auth(true, g.handleRotateTenantKey))
	mux.HandleFunc("POST /api/admin/tenants/{id}/disable", g.auth(true, g.handleSetDisabled(true)))
	mux.HandleFunc("POST /api/admin/tenants/{id}/enable", g.auth(true, g.handleSetDisabled(false)))
	mux.HandleFunc("GET /api/admin/tenants/{id}/callback-secret", g.auth(true, g.handleCallbackSecret))
	mux.HandleFunc("POST /api/admin/tenants/{id}/rotate-callback-secret", g.auth(true, g.handleRotateCallbackSecret))
	mux.HandleFunc("DELETE /api/admin/tenants/{id}/sessions", g.auth(true, g.handleRevokeSessions))
	mux.HandleFunc("POST /api/admin/rotate-key", g.auth(true, g.handleRotateAdminKey))
	mux.HandleFunc("DELETE /api/admin/sessions", g.auth(true, g.handleRevokeSessions))
}

// readOverlap reads {"overlap_seconds": n} (an empty body: the default).
func readOverlap(w http.ResponseWriter, r *http.Request) (time.Duration, bool) {
	body, ok := readLimited(w, r, 4<<10)
	if !ok {
		return 0, false
	}
	if strings.TrimSpace(string(body)) == "" {
		return DefaultKeyOverlap, true
	}
	var req struct {
		Overlap *int64 `json:"overlap_seconds"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed_json", "malformed JSON: "+err.Error(), nil)
		return 0, false
	}
	if req.Overlap == nil {
		return DefaultKeyOverlap, true
	}
	if *req.Overlap < 0 || *req.Overlap > int64(MaxKeyOverlap/time.Second) {
		msg := fmt.Sprintf("overlap_seconds must be 0 to %d", int64(MaxKeyOverlap/time.Second))
		writeError(w, http.StatusBadRequest, "invalid_overlap_seconds", msg, []fieldError{{"overlap_seconds", msg}})
		return 0, false
	}
	return time.Duration(*req.Overlap) * time.Second, true
}

// tenantOr404 loads the tenant of the path, answering 404 when there is none.
func (g *Gateway) tenantOr404(w http.ResponseWriter, r *http.Request) *Tenant {
	t, err := g.store.Tenant(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such tenant", nil)
		return nil
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return nil
	}
	return t
}

func (g *Gateway) keyStoreOr500(w http.ResponseWriter) keyStore {
	ks, err := g.kstore()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error(), nil)
		return nil
	}
	return ks
}

func (g *Gateway) handleRotateTenantKey(w http.ResponseWriter, r *http.Request, _ caller) {
	ks := g.keyStoreOr500(w)
	t := g.tenantOr404(w, r)
	if ks == nil || t == nil {
		return
	}
	overlap, ok := readOverlap(w, r)
	if !ok {
		return
	}
	key := NewKey("hgt_")
	until := time.Time{}
	if overlap > 0 {
		until = g.now().Add(overlap)
	}
	if err := ks.rotateTenantKey(r.Context(), t.ID, HashKey(key), until); err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	g.log.Info("gateway: tenant key rotated; its dashboard sessions ended", "tenant", t.ID, "overlap", overlap.String())
	writeJSON(w, http.StatusOK, map[string]any{"id": t.ID, "api_key": key, "previous_key_valid_until": tptr(until)})
}

func (g *Gateway) handleRotateAdminKey(w http.ResponseWriter, r *http.Request, _ caller) {
	ks := g.keyStoreOr500(w)
	if ks == nil {
		return
	}
	overlap, ok := readOverlap(w, r)
	if !ok {
		return
	}
	key := NewKey("hga_")
	until := g.now().Add(overlap)
	if err := ks.rotateAdminKey(r.Context(), HashKey(key), until); err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	g.log.Info("gateway: admin key rotated; admin dashboard sessions ended", "overlap", overlap.String())
	writeJSON(w, http.StatusOK, map[string]any{"admin_key": key, "previous_keys_valid_until": until})
}

func (g *Gateway) handleSetDisabled(disable bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ caller) {
		ks := g.keyStoreOr500(w)
		t := g.tenantOr404(w, r)
		if ks == nil || t == nil {
			return
		}
		at := time.Time{}
		if disable {
			at = t.DisabledAt
			if at.IsZero() {
				at = g.now()
			}
		}
		if err := ks.setTenantDisabled(r.Context(), t.ID, at); err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
			return
		}
		t.DisabledAt = at
		g.log.Info("gateway: tenant disabled state changed", "tenant", t.ID, "disabled", disable)
		writeJSON(w, http.StatusOK, tenantJSON(t))
	}
}

func (g *Gateway) handleCallbackSecret(w http.ResponseWriter, r *http.Request, _ caller) {
	if t := g.tenantOr404(w, r); t != nil {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, map[string]any{"id": t.ID, "callback_secret": t.Secret})
	}
}

func (g *Gateway) handleRotateCallbackSecret(w http.ResponseWriter, r *http.Request, _ caller) {
	ks := g.keyStoreOr500(w)
	t := g.tenantOr404(w, r)
	if ks == nil || t == nil {
		return
	}
	secret := "whsec_" + randomToken(24)
	if err := ks.setTenantSecret(r.Context(), t.ID, secret); err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	g.log.Info("gateway: tenant callback secret rotated", "tenant", t.ID)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"id": t.ID, "callback_secret": secret})
}

// handleRevokeSessions ends a tenant's dashboard sessions, or everyone's
// (DELETE /api/admin/sessions).
func (g *Gateway) handleRevokeSessions(w http.ResponseWriter, r *http.Request, _ caller) {
	ks := g.keyStoreOr500(w)
	if ks == nil {
		return
	}
	principal := ""
	if r.PathValue("id") != "" {
		t := g.tenantOr404(w, r)
		if t == nil {
			return
		}
		principal = t.ID
	}
	n, err := ks.deleteSessions(r.Context(), principal)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions_revoked": n})
}

// --- dashboard sessions ---

// ErrTenantDisabled is returned for a disabled tenant's key.
var ErrTenantDisabled = errors.New("gateway: the tenant is disabled")

// CreateSession records a dashboard session for the principal of keyHash
// until expires and returns its token (for the cookie; stored hashed).
func (g *Gateway) CreateSession(ctx context.Context, keyHash string, expires time.Time) (string, error) {
	ks, err := g.kstore()
	if err != nil {
		return "", err
	}
	p, err := g.PrincipalByKeyHash(ctx, keyHash)
	if err != nil {
		return "", err
	}
	if p.Tenant != nil && !p.Tenant.DisabledAt.IsZero() {
		return "", ErrTenantDisabled
	}
	principal := adminPrincipal
	if p.Tenant != nil {
		principal = p.Tenant.ID
	}
	token := randomToken(32)
	if err := ks.createSession(ctx, HashKey(token), principal, keyHash, g.now(), expires); err != nil {
		return "", err
	}
	return token, nil
}

// SessionPrincipal resolves a session token to who signed in; ErrNotFound
// when the session ended (signed out, expired, revoked) or its key no
// longer works.
func (g *Gateway) SessionPrincipal(ctx context.Context, token string) (Principal, error) {
	ks, err := g.kstore()
	if err != nil {
		return Principal{}, err
	}
	principal, keyHash, err := ks.session(ctx, HashKey(token))
	if err != nil {
		return Principal{}, err
	}
	p, err := g.PrincipalByKeyHash(ctx, keyHash)
	if err != nil {
		return Principal{}, err
	}
	if (principal == adminPrincipal) != p.Admin || (p.Tenant != nil && (p.Tenant.ID != principal || !p.Tenant.DisabledAt.IsZero())) {
		return Principal{}, ErrNotFound
	}
	return p, nil
}

// EndSession deletes a session (sign-out).
func (g *Gateway) EndSession(ctx context.Context, token string) error {
	ks, err := g.kstore()
	if err != nil {
		return err
	}
	return ks.deleteSession(ctx, HashKey(token))
}

// MetricsHandler serves the Prometheus metrics (for a listener of their
// own; Config.SeparateMetrics).
func (g *Gateway) MetricsHandler() http.Handler { return g.metrics.handler() }

// guardMetrics requires Config.MetricsToken, when set, from scrapers.
func (g *Gateway) guardMetrics(h http.Handler) http.Handler {
	if g.cfg.MetricsToken == "" {
		return h
	}
	want := []byte("Bearer " + g.cfg.MetricsToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass-metrics"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "/metrics needs the metrics token (Authorization: Bearer <token>)", nil)
			return
		}
		h.ServeHTTP(w, r)
	})
}
