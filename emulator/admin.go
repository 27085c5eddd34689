package emulator

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// serveAdmin answers /_emulator/ routes: signed uploads and downloads and
// the admin API. None of them needs a bearer key.
func (e *Emulator) serveAdmin(w *recorder, r *http.Request) string {
	rest := strings.TrimPrefix(r.URL.Path, "/_emulator/")
	switch {
	case strings.HasPrefix(rest, "upload/"):
		e.handleUpload(w, r, strings.TrimPrefix(rest, "upload/"))
		return r.Method + " /_emulator/upload/{token}"
	case strings.HasPrefix(rest, "download/"):
		e.handleDownload(w, r, strings.TrimPrefix(rest, "download/"))
		return r.Method + " /_emulator/download/{token}/{name}"
	case rest == "stats":
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, e.Stats())
		}
		return r.Method + " /_emulator/stats"
	case rest == "faults":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, e.Faults())
		case http.MethodPut:
			b, ok := readBody(w, r)
			if !ok {
				break
			}
			var f Faults
			if err := json.Unmarshal(b, &f); err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				break
			}
			if err := e.SetFaults(f); err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				break
			}
			writeJSON(w, http.StatusOK, f)
		default:
			allow(w, r, http.MethodGet, http.MethodPut)
		}
		return r.Method + " /_emulator/faults"
	case rest == "balance":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, map[string]int64{"balance": e.Balance()})
		case http.MethodPut:
			b, ok := readBody(w, r)
			if !ok {
				break
			}
			var v struct {
				Balance *int64 `json:"balance"`
			}
			if err := json.Unmarshal(b, &v); err != nil || v.Balance == nil {
				writeError(w, http.StatusBadRequest, `body must be {"balance": <integer>}`)
				break
			}
			e.SetBalance(*v.Balance)
			writeJSON(w, http.StatusOK, map[string]int64{"balance": *v.Balance})
		default:
			allow(w, r, http.MethodGet, http.MethodPut)
		}
		return r.Method + " /_emulator/balance"
	case rest == "account":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, e.Account())
		case http.MethodPut, http.MethodPatch:
			b, ok := readBody(w, r)
			if !ok {
				break
			}
			var v struct {
				Tier    *string `json:"tier"`
				Credits *int64  `json:"credits"`
			}
			if err := json.Unmarshal(b, &v); err != nil {
				writeError(w, http.StatusBadRequest, `body must be {"tier": "free|creator|pro|business", "credits": <integer>}`)
				break
			}
			if v.Tier != nil {
				if err := e.SetTier(*v.Tier); err != nil {
					writeError(w, http.StatusBadRequest, err.Error())
					break
				}
			}
			if v.Credits != nil {
				e.SetBalance(*v.Credits)
			}
			writeJSON(w, http.StatusOK, e.Account())
		default:
			allow(w, r, http.MethodGet, http.MethodPut, http.MethodPatch)
		}
		return r.Method + " /_emulator/account"
	case rest == "saved-items":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, e.SavedItems())
		case http.MethodPost:
			b, ok := readBody(w, r)
			if !ok {
				break
			}
			items, err := ParseSavedItems(b)
			if err == nil {
				err = e.AddSavedItems(items)
			}
			if err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				break
			}
			writeJSON(w, http.StatusOK, e.SavedItems())
		default:
			allow(w, r, http.MethodGet, http.MethodPost)
		}
		return r.Method + " /_emulator/saved-items"
	case rest == "reset":
		if allow(w, r, http.MethodPost) {
			e.Reset()
			w.WriteHeader(http.StatusNoContent)
		}
		return r.Method + " /_emulator/reset"
	case strings.HasPrefix(rest, "projects/") && strings.HasSuffix(rest, "/cancel"):
		id := strings.TrimSuffix(strings.TrimPrefix(rest, "projects/"), "/cancel")
		if allow(w, r, http.MethodPost) {
			switch err := e.Cancel(id); {
			case err == nil:
				writeJSON(w, http.StatusOK, map[string]string{"id": id, "status": "canceled"})
			case errors.Is(err, ErrNotFound):
				writeError(w, http.StatusNotFound, "Not Found")
			default:
				writeError(w, http.StatusConflict, err.Error())
			}
		}
		return r.Method + " /_emulator/projects/{id}/cancel"
	}
	writeError(w, http.StatusNotFound, "Not Found")
	return "unmatched"
}

// allow answers 405 unless r.Method is one of methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
	return false
}
