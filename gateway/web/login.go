package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/hourglasshq/hourglass/gateway"
)

type loginView struct {
	Next  string
	Error string
}

// safeNext keeps a post-sign-in redirect on this site: only an absolute
// path of this origin. Browsers drop tabs and newlines from URLs and read
// a backslash as a slash, so "/\t/evil" or "/\\evil" would become
// "//evil", another host: any control character, space or backslash is
// refused, and so is anything url.Parse sees a scheme or host in.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	for _, c := range next {
		if c < 0x21 || c == 0x7f || c == '\\' || (c >= 0x80 && c <= 0x9f) {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return next
}

// The sign-in form is protected against login CSRF by a double-submit
// token: a random cookie, and the form carrying its MAC.
func (d *Dashboard) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	d.renderLogin(w, r, http.StatusOK, loginView{Next: safeNext(r.URL.Query().Get("next"))})
}

func (d *Dashboard) renderLogin(w http.ResponseWriter, r *http.Request, status int, lv loginView) {
	nonce := randomString(16)
	securityHeaders(w, nonce)
	w.Header().Set("Cache-Control", "no-store")
	pre := randomString(18)
	tok, err := d.sign.mac(r.Context(), "login", pre)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.setCookie(w, r, loginCookie, pre, 3600, http.SameSiteStrictMode)
	d.render(w, r, status, "login", view{Title: "Sign in", Nonce: nonce, CSS: d.css, CSRF: tok, Data: lv})
}

func (d *Dashboard) handleLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		securityHeaders(w, "")
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	pre, err := r.Cookie(loginCookie)
	want := ""
	if err == nil {
		want, _ = d.sign.mac(ctx, "login", pre.Value)
	}
	if want == "" || r.PostFormValue("csrf") != want {
		securityHeaders(w, "")
		http.Error(w, "invalid or missing CSRF token: reload the sign-in page and try again", http.StatusForbidden)
		return
	}
	next := safeNext(r.PostFormValue("next"))
	key := strings.TrimSpace(r.PostFormValue("key"))
	p, err := d.gw.Authenticate(ctx, key)
	if errors.Is(err, gateway.ErrNotFound) {
		d.log.Warn("dashboard: sign-in refused", "remote", r.RemoteAddr)
		d.renderLogin(w, r, http.StatusUnauthorized, loginView{Next: next, Error: "That key is not the admin key or a tenant key."})
		return
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if p.Tenant != nil && !p.Tenant.DisabledAt.IsZero() {
		d.log.Warn("dashboard: sign-in refused: tenant disabled", "tenant", p.Tenant.ID, "remote", r.RemoteAddr)
		d.renderLogin(w, r, http.StatusForbidden, loginView{Next: next, Error: "This tenant is disabled."})
		return
	}
	expires := d.gw.Now().Add(d.opts.SessionTTL)
	token, err := d.gw.CreateSession(ctx, gateway.HashKey(key), expires)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	sess := session{Token: token, Nonce: randomString(18), Expires: expires.Unix()}
	v, err := d.sign.encode(ctx, sess)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.setCookie(w, r, loginCookie, "", -1, http.SameSiteStrictMode)
	d.setCookie(w, r, sessionCookie, v, int(d.opts.SessionTTL.Seconds()), http.SameSiteLaxMode)
	who := "admin"
	if p.Tenant != nil {
		who = "tenant " + p.Tenant.ID
	}
	d.log.Info("dashboard: signed in", "who", who, "remote", r.RemoteAddr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// handleLogout ends the session in the database (a copied cookie stops
// working too), then clears the cookie.
func (d *Dashboard) handleLogout(w http.ResponseWriter, r *http.Request, u *user) {
	if err := d.gw.EndSession(r.Context(), u.sess.Token); err != nil {
		d.fail(w, r, err)
		return
	}
	d.setCookie(w, r, sessionCookie, "", -1, http.SameSiteLaxMode)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
