package gateway

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// Input files uploaded through the gateway. The gateway keeps the bytes
// in its own storage and answers a file_path of the form
// "api-assets/hourglass/<upload id>.<ext>", which passes the API's
// validation like any Magic Hour file_path. Before the create of a job
// that uses it, the worker uploads the file to Magic Hour (once: the
// upstream file_path is remembered) and sends the job with that path.

const uploadRefPrefix = "api-assets/hourglass/"

// uploadTTL is how long a drop-in upload URL accepts its PUT.
const uploadTTL = time.Hour

// uploadRef returns the upload id of a gateway file_path.
func uploadRef(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, uploadRefPrefix)
	if !ok {
		return "", false
	}
	id, _, _ := strings.Cut(rest, ".")
	return id, strings.HasPrefix(id, "upl_")
}

func uploadFilePath(u *Upload) string { return uploadRefPrefix + u.ID + "." + u.Ext }

func uploadStorageKey(u *Upload) string { return "uploads/" + u.TenantID + "/" + u.ID + "." + u.Ext }

// newUpload records an upload slot for a tenant; it returns the PUT token.
func (g *Gateway) newUpload(ctx context.Context, tenantID, ext string) (*Upload, string, error) {
	ext = strings.ToLower(strings.TrimPrefix(ext, "."))
	media := catalog.MediaOfExtension(ext)
	if media == "" {
		return nil, "", fmt.Errorf("unsupported extension %q", ext)
	}
	now := g.now()
	token := randomToken(20)
	u := &Upload{ID: "upl_" + randomToken(12), TenantID: tenantID, Media: media, Ext: ext, TokenHash: HashKey(token),
		CreatedAt: now, ExpiresAt: now.Add(uploadTTL)}
	if err := g.store.CreateUpload(ctx, u); err != nil {
		return nil, "", err
	}
	return u, token, nil
}

// storeUpload streams body into the upload's storage object, within
// MaxUploadBytes. w is the request's writer (told to close the connection
// after a too-large body); nil for a caller without HTTP (the dashboard).
func (g *Gateway) storeUpload(ctx context.Context, w http.ResponseWriter, u *Upload, body io.Reader) (int, *apiError) {
	size, sum, err := g.storage.Put(ctx, uploadStorageKey(u), http.MaxBytesReader(w, io.NopCloser(body), g.cfg.MaxUploadBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return http.StatusRequestEntityTooLarge, &apiError{Code: "file_too_large", Message: fmt.Sprintf("the file is larger than %d bytes", g.cfg.MaxUploadBytes)}
		}
		if errors.Is(err, errBodyTimeout) {
			return http.StatusRequestTimeout, &apiError{Code: "body_timeout", Message: err.Error()}
		}
		g.log.Error("gateway: store upload", "upload", u.ID, "err", err)
		return http.StatusInternalServerError, &apiError{Code: "storage", Message: "could not store the file"}
	}
	if size == 0 {
		_ = g.storage.Delete(context.WithoutCancel(ctx), uploadStorageKey(u))
		return http.StatusBadRequest, &apiError{Code: "empty_file", Message: "the file is empty"}
	}
	u.StorageKey, u.Size, u.SHA256, u.StoredAt, u.UpstreamPath = uploadStorageKey(u), size, sum, g.now(), ""
	if err := g.store.UpdateUpload(ctx, u); err != nil {
		return http.StatusInternalServerError, &apiError{Code: "internal", Message: "database error"}
	}
	g.metrics.storedBytes.Add(float64(size))
	g.forgetUsage(u.TenantID)
	return 0, nil
}

// handleUploadPut receives the bytes of a drop-in upload URL (no API key:
// the URL's token is the credential, as with Magic Hour's presigned URLs).
func (g *Gateway) handleUploadPut(w http.ResponseWriter, r *http.Request) {
	u, err := g.store.Upload(r.Context(), "", r.PathValue("id"))
	if err != nil || subtle.ConstantTimeCompare([]byte(HashKey(r.PathValue("token"))), []byte(u.TokenHash)) != 1 {
		writeError(w, http.StatusForbidden, "bad_upload_url", "unknown or invalid upload URL", nil)
		return
	}
	if g.now().After(u.ExpiresAt) {
		writeError(w, http.StatusForbidden, "upload_url_expired", "the upload URL has expired; request a new one", nil)
		return
	}
	if code, ae := g.checkQuota(r.Context(), u.TenantID); ae != nil {
		writeError(w, code, ae.Code, ae.Message, nil)
		return
	}
	if code, ae := g.storeUpload(r.Context(), w, u, r.Body); ae != nil {
		writeError(w, code, ae.Code, ae.Message, nil)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// handleAPIUpload is POST /api/uploads: the file is either the raw body
// (?extension=png or ?filename=x.png) or the first file part of a
// multipart form (curl -F file=@x.png), its extension from the part's
// filename unless ?extension= says otherwise. The file's first bytes must
// match its extension. It answers the file_path to use in params.
func (g *Gateway) handleAPIUpload(w http.ResponseWriter, r *http.Request, c caller) {
	if c.Tenant == nil {
		writeError(w, http.StatusForbidden, "forbidden", "files are uploaded with a tenant key", nil)
		return
	}
	body, ext, ae := uploadBody(r)
	if ae != nil {
		writeError(w, http.StatusBadRequest, ae.Code, ae.Message, ae.Fields)
		return
	}
	if ext == "" {
		writeError(w, http.StatusBadRequest, "missing_extension", "pass ?extension=png (or ?filename=photo.png), or send the file as a multipart part with a filename (curl -F file=@photo.png)", []fieldError{{"extension", "is required"}})
		return
	}
	u, code, ae := g.receiveUpload(r.Context(), w, c.Tenant.ID, ext, body)
	if ae != nil {
		writeError(w, code, ae.Code, ae.Message, ae.Fields)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": u.ID, "file_path": uploadFilePath(u), "media": u.Media,
		"size": u.Size, "sha256": u.SHA256})
}

// receiveUpload checks ext and the file's signature, then records and
// stores the upload; nothing is recorded for a refused file.
func (g *Gateway) receiveUpload(ctx context.Context, w http.ResponseWriter, tenantID, ext string, body io.Reader) (*Upload, int, *apiError) {
	ext = strings.ToLower(strings.TrimPrefix(ext, "."))
	if catalog.MediaOfExtension(ext) == "" {
		return nil, http.StatusBadRequest, &apiError{Code: "unsupported_extension", Message: fmt.Sprintf("unsupported extension %q; accepted: %s", ext, allExtensions()),
			Fields: []fieldError{{"extension", "unsupported"}}}
	}
	checked, err := checkSignature(body, ext)
	if err != nil {
		var es errSignature
		if errors.As(err, &es) {
			return nil, http.StatusBadRequest, &apiError{Code: "file_signature_mismatch", Message: err.Error(), Fields: []fieldError{{"file", "content does not match ." + ext}}}
		}
		if errors.Is(err, errBodyTimeout) {
			return nil, http.StatusRequestTimeout, &apiError{Code: "body_timeout", Message: err.Error()}
		}
		return nil, http.StatusBadRequest, &apiError{Code: "bad_body", Message: "could not read the file: " + err.Error()}
	}
	if code, ae := g.checkQuota(ctx, tenantID); ae != nil {
		return nil, code, ae
	}
	u, _, err := g.newUpload(ctx, tenantID, ext)
	if err != nil {
		return nil, http.StatusInternalServerError, &apiError{Code: "internal", Message: "could not record the upload"}
	}
	if code, ae := g.storeUpload(ctx, w, u, checked); ae != nil {
		return nil, code, ae
	}
	return u, 0, nil
}

func allExtensions() string {
	var out []string
	for _, m := range []string{"image", "video", "audio"} {
		out = append(out, catalog.Extensions[m]...)
	}
	return strings.Join(out, ", ")
}

// walkFiles calls fn on every input-file value of body (decoded JSON) at
// op's file fields; fn may replace the value.
func walkFiles(op *catalog.Operation, body map[string]any, fn func(field, value string) string) {
	for _, r := range op.FileRefs(body) {
		if nv := fn(r.Field, r.Value); nv != r.Value {
			_ = catalog.Set(body, r.Field, nv)
		}
	}
}

func decodeParams(params []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil {
		return nil, err
	}
	return body, nil
}

// checkUploads verifies at submit time that every gateway file_path in
// params is the tenant's and holds its bytes.
func (g *Gateway) checkUploads(ctx context.Context, tenantID string, op *catalog.Operation, params []byte) []fieldError {
	if !mayReferUploads(params) {
		return nil
	}
	body, err := decodeParams(params)
	if err != nil {
		return nil
	}
	var bad []fieldError
	walkFiles(op, body, func(field, v string) string {
		id, ok := uploadRef(v)
		if !ok {
			return v
		}
		u, err := g.store.Upload(ctx, tenantID, id)
		switch {
		case err != nil:
			bad = append(bad, fieldError{"params." + field, "no such upload " + v})
		case u.StoredAt.IsZero():
			bad = append(bad, fieldError{"params." + field, "the file was never uploaded (PUT it to its upload_url first): " + v})
		}
		return v
	})
	return bad
}

// errUploadMissing: a job refers to an upload that is gone (permanent).
var errUploadMissing = errors.New("input upload missing")

// resolveUploads returns params with every gateway file_path replaced by
// the file's Magic Hour file_path, uploading files not sent yet.
func (g *Gateway) resolveUploads(ctx context.Context, tenantID string, op *catalog.Operation, params []byte) ([]byte, bool, error) {
	if !mayReferUploads(params) {
		return params, false, nil
	}
	body, err := decodeParams(params)
	if err != nil {
		return nil, false, err
	}
	var firstErr error
	walkFiles(op, body, func(field, v string) string {
		id, ok := uploadRef(v)
		if !ok || firstErr != nil {
			return v
		}
		up, err := g.uploadUpstream(ctx, tenantID, id)
		if err != nil {
			firstErr = fmt.Errorf("%s: %w", field, err)
			return v
		}
		return up
	})
	if firstErr != nil {
		return nil, false, firstErr
	}
	out, err := json.Marshal(body)
	return out, true, err
}

// uploadUpstream sends one stored upload to Magic Hour (once).
func (g *Gateway) uploadUpstream(ctx context.Context, tenantID, id string) (string, error) {
	u, err := g.store.Upload(ctx, tenantID, id)
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("%w: %s", errUploadMissing, id)
	}
	if err != nil {
		return "", err
	}
	if u.StoredAt.IsZero() || u.StorageKey == "" {
		return "", fmt.Errorf("%w: %s was never uploaded", errUploadMissing, id)
	}
	if u.UpstreamPath != "" {
		return u.UpstreamPath, nil
	}
	f, size, err := g.storage.Open(ctx, u.StorageKey)
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("%w: %s is not in storage", errUploadMissing, id)
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	p, err := g.upUpload(ctx, f, size, u.Ext)
	if err != nil {
		return "", fmt.Errorf("upload %s to Magic Hour: %w", id, err)
	}
	u.UpstreamPath = p
	if err := g.store.UpdateUpload(context.WithoutCancel(ctx), u); err != nil {
		return "", err
	}
	return p, nil
}
