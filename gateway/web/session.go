package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
)

// Sessions are kept in the database (the gateway's sessions table): the
// cookie is HMAC-signed and carries a random session token (stored hashed),
// a nonce (for CSRF tokens) and an expiry. Every request looks the session
// up, so signing out, rotating the key that signed in, disabling the
// tenant or an admin's revocation ends it at once, on every replica. The
// signing secret lives in the database too.

const (
	sessionCookie = "hg_session"
	loginCookie   = "hg_login"
)

type session struct {
	Token   string `json:"s"`
	Nonce   string `json:"n"`
	Expires int64  `json:"e"` // Unix seconds
}

type signer struct {
	load func(context.Context) ([]byte, error)
	mu   sync.Mutex
	key  []byte
}

func (s *signer) secret(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil {
		return s.key, nil
	}
	k, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	if len(k) < 16 {
		return nil, errors.New("web: session secret too short")
	}
	s.key = k
	return k, nil
}

func (s *signer) mac(ctx context.Context, parts ...string) (string, error) {
	k, err := s.secret(ctx)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, k)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

// encode signs a session into a cookie value.
func (s *signer) encode(ctx context.Context, sess session) (string, error) {
	payload, err := json.Marshal(sess)
	if err != nil {
		return "", err
	}
	p := base64.RawURLEncoding.EncodeToString(payload)
	sig, err := s.mac(ctx, "session", p)
	if err != nil {
		return "", err
	}
	return p + "." + sig, nil
}

// decode verifies a cookie value and returns its session.
func (s *signer) decode(ctx context.Context, v string, now time.Time) (session, bool) {
	p, sig, ok := strings.Cut(v, ".")
	if !ok {
		return session{}, false
	}
	want, err := s.mac(ctx, "session", p)
	if err != nil || subtle.ConstantTimeCompare([]byte(sig), []byte(want)) != 1 {
		return session{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return session{}, false
	}
	var sess session
	if json.Unmarshal(raw, &sess) != nil || sess.Token == "" || now.Unix() >= sess.Expires {
		return session{}, false
	}
	return sess, true
}

// csrf is the token that forms of a session carry.
func (s *signer) csrf(ctx context.Context, nonce string) string {
	t, err := s.mac(ctx, "csrf", nonce)
	if err != nil {
		return ""
	}
	return t
}

func (s *signer) checkCSRF(ctx context.Context, nonce, got string) bool {
	want := s.csrf(ctx, nonce)
	return want != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// user is the signed-in principal of a request.
type user struct {
	gateway.Principal
	sess session
	csrf string
}

// Name is how the header shows who is signed in.
func (u *user) Name() string {
	if u.Admin {
		return "admin"
	}
	return u.Tenant.Name
}

type ctxKey struct{}

func userOf(r *http.Request) *user {
	u, _ := r.Context().Value(ctxKey{}).(*user)
	return u
}

func (d *Dashboard) secure(r *http.Request) bool {
	if d.opts.SecureCookies || r.TLS != nil {
		return true
	}
	if !strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") || len(d.opts.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	for _, p := range d.opts.TrustedProxies {
		if p.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}

func (d *Dashboard) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int, site http.SameSite) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: d.secure(r), SameSite: site})
}

// authenticate resolves the session cookie to a user, or nil.
func (d *Dashboard) authenticate(r *http.Request) (*user, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil
	}
	ctx := r.Context()
	sess, ok := d.sign.decode(ctx, c.Value, d.gw.Now())
	if !ok {
		return nil, nil
	}
	p, err := d.gw.SessionPrincipal(ctx, sess.Token)
	if errors.Is(err, gateway.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &user{Principal: p, sess: sess, csrf: d.sign.csrf(ctx, sess.Nonce)}, nil
}
