package emulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// asset is an uploaded input file.
type asset struct {
	disk string // file in the emulator's temp dir
	size int64
	head []byte // first 4 KiB, searched for failure markers
}

const headSize = 4 << 10

// token signs "ref|expiry-unix-ms" for upload and download links.
func (e *Emulator) token(ref string, exp time.Time) string {
	payload := ref + "|" + strconv.FormatInt(exp.UnixMilli(), 10)
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + e.sign(payload)[:32]
}

// parseToken checks a token's signature and returns its ref and expiry.
func (e *Emulator) parseToken(tok string) (ref string, exp time.Time, ok bool) {
	enc, sig, found := strings.Cut(tok, ".")
	if !found {
		return "", time.Time{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", time.Time{}, false
	}
	payload := string(raw)
	if want := e.sign(payload)[:32]; len(sig) != len(want) || !hmacEqual(sig, want) {
		return "", time.Time{}, false
	}
	ref, ms, found := strings.Cut(payload, "|")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !found || err != nil {
		return "", time.Time{}, false
	}
	return ref, time.UnixMilli(n), true
}

func hmacEqual(a, b string) bool {
	var v byte
	for i := 0; i < len(a) && i < len(b); i++ {
		v |= a[i] ^ b[i]
	}
	return v == 0 && len(a) == len(b)
}

// downloadURLLocked makes a signed download link for output i of project id
// (kind "p") or face i of face detection id (kind "f").
func (e *Emulator) downloadURLLocked(kind, id string, i int, name string, t time.Time, faults bool) downloadJSON {
	exp := t.Add(e.cfg.urlTTL)
	if faults && e.faults.ExpireURLs > 0 && e.faultRand.Float64() < e.faults.ExpireURLs {
		exp = e.clock.Now().Add(-time.Second)
	}
	ref := fmt.Sprintf("%s:%s:%d", kind, id, i)
	return downloadJSON{
		URL:       e.baseURL + "/_emulator/download/" + e.token(ref, exp) + "/" + name,
		ExpiresAt: timestamp(exp),
	}
}

// assetExistsLocked reports whether file_path names an upload or a face
// found by a finished face detection.
func (e *Emulator) assetExistsLocked(path string) bool {
	if e.assets[path] != nil {
		return true
	}
	rest, _ := strings.CutPrefix(path, "api-assets/")
	id, file, _ := strings.Cut(rest, "/")
	p := e.projects[id]
	if p == nil || p.kind != catalog.KindFaceDetection || p.statusAt(e.clock.Now()) != "complete" {
		return false
	}
	for i := range p.faces {
		if file == fmt.Sprintf("0-%d.png", i) {
			return true
		}
	}
	return false
}

type uploadItem struct {
	Type      string `json:"type"`
	Extension string `json:"extension"`
}

type uploadURLJSON struct {
	UploadURL string `json:"upload_url"`
	ExpiresAt string `json:"expires_at"`
	FilePath  string `json:"file_path"`
}

func (e *Emulator) handleUploadURLs(w http.ResponseWriter, r *http.Request, op *catalog.Operation) {
	b, ok := readBody(w, r)
	if !ok || !validate(w, op, b) {
		return
	}
	var req struct {
		Items []uploadItem `json:"items"`
	}
	if err := json.Unmarshal(b, &req); err != nil {
		writeError(w, http.StatusBadRequest, "request body: "+err.Error())
		return
	}
	var errs []string
	for i, it := range req.Items {
		ext := strings.ToLower(strings.TrimPrefix(it.Extension, "."))
		if got := catalog.MediaOfExtension(ext); got != it.Type {
			errs = append(errs, fmt.Sprintf("items[%d].extension: %q is not a supported %s extension; accepted: %s",
				i, it.Extension, it.Type, strings.Join(catalog.Extensions[it.Type], ", ")))
		}
	}
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, strings.Join(errs, "; "))
		return
	}
	e.mu.Lock()
	id := e.newIDLocked("up")
	now := e.clock.Now()
	exp := now.Add(e.cfg.uploadURLTTL)
	items := make([]uploadURLJSON, len(req.Items))
	for i, it := range req.Items {
		ext := strings.ToLower(strings.TrimPrefix(it.Extension, "."))
		path := fmt.Sprintf("api-assets/%s/%d.%s", id, i, ext)
		items[i] = uploadURLJSON{
			UploadURL: e.baseURL + "/_emulator/upload/" + e.token("u:"+path, exp),
			ExpiresAt: timestamp(exp),
			FilePath:  path,
		}
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

// handleUpload stores the body of PUT /_emulator/upload/{token}, streaming
// it to a temp file.
func (e *Emulator) handleUpload(w http.ResponseWriter, r *http.Request, tok string) {
	if r.Method != http.MethodPut {
		w.Header().Set("Allow", http.MethodPut)
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed: upload with PUT")
		return
	}
	ref, exp, ok := e.parseToken(tok)
	path, isUpload := strings.CutPrefix(ref, "u:")
	if !ok || !isUpload {
		writeError(w, http.StatusForbidden, "invalid upload URL signature")
		return
	}
	if !e.clock.Now().Before(exp) {
		writeError(w, http.StatusForbidden, "upload URL expired at "+timestamp(exp)+"; request a new one from /v1/files/upload-urls")
		return
	}
	limit := e.cfg.maxUploadSize
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("file too large: %d bytes, the limit is %d", r.ContentLength, limit))
		return
	}
	f, err := os.CreateTemp(e.tmpDir, "upload-*")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot store upload")
		return
	}
	var head bytes.Buffer
	n, err := io.Copy(io.MultiWriter(f, &headWriter{&head}), io.LimitReader(r.Body, limit+1))
	cerr := f.Close()
	if err == nil {
		err = cerr
	}
	if err != nil || n > limit {
		_ = os.Remove(f.Name())
		if n > limit {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("file too large: the limit is %d bytes", limit))
		} else {
			writeError(w, http.StatusBadRequest, "upload failed: "+err.Error())
		}
		return
	}
	e.mu.Lock()
	if old := e.assets[path]; old != nil {
		_ = os.Remove(old.disk)
	}
	e.assets[path] = &asset{disk: f.Name(), size: n, head: head.Bytes()}
	e.stats.Uploads++
	e.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// headWriter keeps the first headSize bytes written to it.
type headWriter struct{ b *bytes.Buffer }

func (h *headWriter) Write(p []byte) (int, error) {
	if rest := headSize - h.b.Len(); rest > 0 {
		h.b.Write(p[:min(rest, len(p))])
	}
	return len(p), nil
}

// handleDownload serves GET|HEAD /_emulator/download/{token}/{name}.
func (e *Emulator) handleDownload(w *recorder, r *http.Request, rest string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	tok, name, _ := strings.Cut(rest, "/")
	ref, exp, ok := e.parseToken(tok)
	if !ok {
		writeError(w, http.StatusForbidden, "invalid download URL signature")
		return
	}
	now := e.clock.Now()
	if !now.Before(exp) {
		writeError(w, http.StatusForbidden, "download URL expired at "+timestamp(exp)+"; GET the project again for a fresh URL")
		return
	}
	parts := strings.Split(ref, ":")
	if len(parts) != 3 {
		writeError(w, http.StatusForbidden, "invalid download URL")
		return
	}
	i, err := strconv.Atoi(parts[2])
	if err != nil {
		writeError(w, http.StatusForbidden, "invalid download URL")
		return
	}
	e.mu.Lock()
	p := e.projects[parts[1]]
	var out output
	found := p != nil && p.statusAt(now) == "complete"
	if parts[0] == "s" {
		found = false
		for _, s := range e.saved {
			if s.ID == parts[1] && i < len(s.Assets) {
				found, out = true, savedOutput(s.Assets[i])
				p = &project{endAt: now}
			}
		}
	} else if found {
		switch {
		case parts[0] == "f" && i < p.faces:
			out = output{media: "image", format: "png", w: 256, h: 256}
		case parts[0] == "p" && i < len(p.outputs):
			out = p.outputs[i]
		default:
			found = false
		}
	}
	var modtime time.Time
	if found {
		modtime = p.endAt
		e.stats.Downloads++
	}
	f := e.faults
	truncate := found && f.TruncateDownload > 0 && e.faultRand.Float64() < f.TruncateDownload
	e.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	content, err := e.content(ref, out)
	if err != nil {
		e.log.Error("generate media", "ref", ref, "err", err)
		writeError(w, http.StatusInternalServerError, "could not generate media")
		return
	}
	w.Header().Set("Content-Type", e.media.contentType(out.format))
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	var rw http.ResponseWriter = w
	if f.DownloadBytesPerSec > 0 {
		rw = &throttledWriter{ResponseWriter: rw, ctx: r.Context(), e: e, rate: f.DownloadBytesPerSec}
	}
	if truncate {
		size, _ := content.Seek(0, io.SeekEnd)
		_, _ = content.Seek(0, io.SeekStart)
		tw := &truncatingWriter{ResponseWriter: rw, limit: size / 2}
		rw = tw
		defer func() {
			if tw.cut {
				w.hijacked = true
			}
		}()
	}
	http.ServeContent(rw, r, name, modtime, content)
}

// content returns the bytes of one output.
func (e *Emulator) content(ref string, o output) (io.ReadSeeker, error) {
	if e.cfg.outputSize > 0 {
		return e.media.synthetic(e.cfg.outputSize, int64(e.hash(ref, "synthetic"))), nil
	}
	b, err := e.media.get(o)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}
