package gateway

import (
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// Stored outputs are served on the dashboard's origin, so an output must
// never be taken for a page: only media types the job's kind of tool
// produces are served as such (anything else, HTML and SVG included, as an
// application/octet-stream attachment), with nosniff, a sandboxing CSP, and
// a Content-Disposition file name made of the job id, index and extension
// (not the upstream's or the request's words).

// outputMedia lists, per job kind, the media types served inline and their
// file extension.
var outputMedia = map[string]map[string]string{
	"video": {"video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov"},
	"image": {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif", "image/avif": ".avif"},
	"audio": {"audio/mpeg": ".mp3", "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/mp4": ".m4a", "audio/aac": ".aac", "audio/ogg": ".ogg", "audio/flac": ".flac"},
}

// outputCSP keeps a stored output from running anything even when opened
// directly: no script, no plugins, a unique origin (sandbox).
const outputCSP = "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'"

// outputType returns the media type to serve an output of a job of kind
// with, and its file extension; ok false: not a type the tool produces.
func outputType(kind, contentType, storageKey string) (ct, ext string, ok bool) {
	allowed := outputMedia[kind]
	base, _, err := mime.ParseMediaType(contentType)
	if err != nil || base == "" || base == "application/octet-stream" || base == "binary/octet-stream" {
		// The upstream did not say: go by the stored file's extension.
		base, _, _ = mime.ParseMediaType(mime.TypeByExtension(strings.ToLower(path.Ext(storageKey))))
	}
	if ext, ok := allowed[base]; ok {
		return base, ext, true
	}
	return "application/octet-stream", ".bin", false
}

// setOutputHeaders sets the headers of a served output; download asks for
// an attachment even for a media type that may be shown inline.
func setOutputHeaders(h http.Header, j *Job, o Output, download bool) {
	ct, ext, ok := outputType(j.Kind, o.ContentType, o.StorageKey)
	disposition := "inline"
	if download || !ok {
		disposition = "attachment"
	}
	name := j.ID + "-" + strconv.Itoa(o.Index) + ext
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": name}))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", outputCSP)
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}
