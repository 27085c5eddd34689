// Package web is the gateway's dashboard: server-rendered pages (jobs,
// job detail with previews and timeline, a submit form per tool generated
// from the catalog, an overview) with a little plain JavaScript for live
// updates over Server-Sent Events. Templates and assets are embedded; there
// is no build step.
//
// Sign-in takes the admin key or a tenant key. Sessions are HMAC-signed
// cookies (HttpOnly, SameSite=Lax, Secure under TLS) whose secret is kept in
// the gateway's database, so any replica serves any session; every POST
// carries a CSRF token. A tenant sees only its own jobs; the admin sees all
// and cannot submit (as in the API).
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure the dashboard.
type Options struct {
	// API receives every request the dashboard does not serve (the
	// gateway's own Handler: /api, /hooks, /healthz, ...).
	API http.Handler
	// SecureCookies marks cookies Secure even without TLS on this hop
	// (behind a TLS-terminating proxy). Requests over TLS always get them.
	SecureCookies bool
	// TrustedProxies are the addresses whose X-Forwarded-Proto: https is
	// believed (a TLS-terminating proxy in front): cookies they forward
	// are marked Secure. From anyone else the header is ignored.
	TrustedProxies []netip.Prefix
	// SessionTTL is how long a sign-in lasts (default 12h).
	SessionTTL time.Duration
	// MaxUploadBytes limits a submit form with files (default: the
	// gateway's limit of one upload, MaxUploadBytes, plus 1 MiB for the
	// form's other fields).
	MaxUploadBytes int64
	Logger         *slog.Logger
}

// Dashboard is the dashboard's http.Handler.
type Dashboard struct {
	gw    *gateway.Gateway
	opts  Options
	sign  *signer
	mux   *http.ServeMux
	h     http.Handler // mux behind the gateway's body guard
	pages map[string]*template.Template
	css   template.CSS
	log   *slog.Logger
	poll  time.Duration
}

// New returns the dashboard of gw, served at "/"; requests it does not
// handle go to opts.API.
func New(gw *gateway.Gateway, opts Options) *Dashboard {
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = gw.MaxUploadBytes() + 1<<20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dashboard{gw: gw, opts: opts, sign: &signer{load: gw.DashboardSecret}, log: opts.Logger, poll: gw.SSEPoll()}
	css, err := staticFS.ReadFile("static/app.css")
	if err != nil {
		panic(err)
	}
	d.css = template.CSS(css) //nolint:gosec // our own embedded stylesheet
	d.pages = parsePages()
	d.routes()
	return d
}

func (d *Dashboard) routes() {
	m := http.NewServeMux()
	cop := http.NewCrossOriginProtection()
	post := func(h func(http.ResponseWriter, *http.Request, *user)) http.Handler {
		return cop.Handler(d.requireCSRF(h))
	}

	m.HandleFunc("GET /login", d.handleLoginForm)
	m.Handle("POST /login", cop.Handler(http.HandlerFunc(d.handleLogin)))
	m.Handle("POST /logout", post(d.handleLogout))

	m.Handle("GET /{$}", d.page(d.handleList))
	m.Handle("GET /jobs", d.page(d.handleList))
	m.Handle("GET /jobs/{id}", d.page(d.handleDetail))
	m.Handle("GET /jobs/{id}/outputs/{n}", d.asset(d.handleOutput))
	m.Handle("GET /jobs/{id}/stream", d.asset(d.handleJobStream))
	m.Handle("GET /stream", d.asset(d.handleListStream))
	m.Handle("GET /overview", d.page(d.handleOverview))
	m.Handle("GET /submit", d.page(d.handleSubmitIndex))
	m.Handle("GET /submit/{tool}", d.page(d.handleSubmitForm))
	m.Handle("POST /submit/{tool}", post(d.handleSubmit))
	d.batchRoutes(m) // batches.go
	m.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) {
		// Browsers ask for it on every site: a tiny icon, not a refusal in the logs.
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		_, _ = w.Write([]byte(favicon))
	})
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	m.Handle("GET /static/", d.asset(func(w http.ResponseWriter, r *http.Request, _ *user) {
		w.Header().Set("Cache-Control", "private, max-age=300")
		files.ServeHTTP(w, r)
	}))
	if d.opts.API != nil {
		m.Handle("/", d.opts.API)
	}
	d.mux = m
	d.h = d.gw.GuardRequests(m) // body deadlines (sign-in bodies count as unauthenticated), text checks
}

// favicon is an hourglass, as SVG (browsers accept it for /favicon.ico).
const favicon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path d="M3 1h10v3l-4 4 4 4v3H3v-3l4-4-4-4z" fill="#4f46e5"/></svg>`

// ServeHTTP implements http.Handler.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.h.ServeHTTP(w, r)
}

// securityHeaders are set on every dashboard response. nonce allows the
// sign-in page's inline stylesheet.
func securityHeaders(w http.ResponseWriter, nonce string) {
	style := "'self'"
	if nonce != "" {
		style += " 'nonce-" + nonce + "'"
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src "+style+
		"; img-src 'self' data:; media-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
}

// session sets the security headers and returns the signed-in user; when
// there is none it answers (redirect to sign-in for pages, 401 otherwise)
// and returns nil.
func (d *Dashboard) session(w http.ResponseWriter, r *http.Request, isPage bool) *user {
	securityHeaders(w, "")
	u, err := d.authenticate(r)
	switch {
	case err != nil:
		d.fail(w, r, err)
		return nil
	case u == nil && isPage:
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	case u == nil:
		http.Error(w, "sign in first", http.StatusUnauthorized)
	}
	return u
}

// page wraps a page handler: without a session it redirects to sign-in.
func (d *Dashboard) page(h func(http.ResponseWriter, *http.Request, *user)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := d.session(w, r, true)
		if u == nil {
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r.WithContext(withUser(r, u)), u)
	})
}

// asset wraps a non-page handler (files, streams): without a session, 401.
func (d *Dashboard) asset(h func(http.ResponseWriter, *http.Request, *user)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := d.session(w, r, false); u != nil {
			h(w, r.WithContext(withUser(r, u)), u)
		}
	})
}

// requireCSRF wraps a POST handler: a session and its CSRF token (form
// field csrf or header X-CSRF-Token) are required.
func (d *Dashboard) requireCSRF(h func(http.ResponseWriter, *http.Request, *user)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := d.session(w, r, false)
		if u == nil {
			return
		}
		tok := r.Header.Get("X-CSRF-Token")
		if tok == "" {
			if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
				r.Body = http.MaxBytesReader(w, r.Body, d.opts.MaxUploadBytes)
				if err := r.ParseMultipartForm(32 << 20); err != nil {
					var mbe *http.MaxBytesError
					if errors.As(err, &mbe) {
						http.Error(w, "upload too large", http.StatusRequestEntityTooLarge)
						return
					}
					http.Error(w, "malformed form", http.StatusBadRequest)
					return
				}
			} else {
				r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			}
			tok = r.PostFormValue("csrf")
		}
		if !d.sign.checkCSRF(r.Context(), u.sess.Nonce, tok) {
			d.log.Warn("dashboard: CSRF token missing or wrong", "path", r.URL.Path, "remote", r.RemoteAddr)
			http.Error(w, "invalid or missing CSRF token: reload the page and try again", http.StatusForbidden)
			return
		}
		h(w, r.WithContext(withUser(r, u)), u)
	}
}

func withUser(r *http.Request, u *user) context.Context {
	return context.WithValue(r.Context(), ctxKey{}, u)
}

func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The browser went away (navigated on): nothing failed.
		d.log.Debug("dashboard: request canceled by the client", "path", r.URL.Path)
		return
	}
	d.log.Error("dashboard: internal error", "path", r.URL.Path, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// --- templates ---

func parsePages() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html"))
	pages := map[string]*template.Template{}
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
	}
	pages["partials"] = base
	return pages
}

// view is what every page template gets.
type view struct {
	Title string
	Nav   string
	User  *user
	CSRF  string
	Nonce string
	CSS   template.CSS
	Data  any
}

func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	if u := userOf(r); u != nil && v.User == nil {
		v.User, v.CSRF = u, u.csrf
	}
	var buf bytes.Buffer
	if err := d.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		d.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fragment renders one partial template to a string (for SSE updates).
func (d *Dashboard) fragment(name string, data any) (string, error) {
	var buf bytes.Buffer
	err := d.pages["partials"].ExecuteTemplate(&buf, name, data)
	return buf.String(), err
}

func (d *Dashboard) notFound(w http.ResponseWriter, r *http.Request, what string) {
	d.render(w, r, http.StatusNotFound, "error", view{Title: "Not found", Data: errorView{
		Heading: "Not found", Message: what}})
}

type errorView struct {
	Heading string
	Message string
}
