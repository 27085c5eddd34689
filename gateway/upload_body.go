package gateway

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
)

// uploadBody finds the file of an upload request and its extension: the
// raw body, or the first part with a filename of a multipart/form-data
// body (a form field "extension" before it also counts). ?extension= wins
// over a filename's.
func uploadBody(r *http.Request) (io.Reader, string, *apiError) {
	q := r.URL.Query()
	ext := q.Get("extension")
	if ext == "" {
		ext = extOf(q.Get("filename"))
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return r.Body, ext, nil
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, "", &apiError{Code: "bad_multipart", Message: "malformed multipart body: " + err.Error()}
	}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, "", &apiError{Code: "missing_file", Message: "the multipart body has no file part (send curl -F file=@photo.png)",
				Fields: []fieldError{{"file", "is required"}}}
		}
		if err != nil {
			return nil, "", &apiError{Code: "bad_multipart", Message: "malformed multipart body: " + err.Error()}
		}
		if p.FileName() == "" {
			if p.FormName() == "extension" && ext == "" {
				b, _ := io.ReadAll(io.LimitReader(p, 16))
				ext = strings.TrimSpace(string(b))
			}
			continue
		}
		if ext == "" {
			ext = extOf(p.FileName())
		}
		return p, ext, nil
	}
}

// extOf returns a file name's extension without the dot ("" if none).
func extOf(name string) string {
	return strings.TrimPrefix(path.Ext(strings.ReplaceAll(name, "\\", "/")), ".")
}
