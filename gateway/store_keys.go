package gateway

// Store side of revocation (issue 11 item 6): dashboard sessions, key
// rotation with an overlap window, tenant disable, callback secret
// rotation. Same SQL on both dialects.

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// adminPrincipal is the sessions.principal of the admin.
const adminPrincipal = "admin"

// keyStore is what revocation needs beyond Store; the SQL store
// implements it.
type keyStore interface {
	// rotateTenantKey makes newHash the tenant's key; the old one keeps
	// working until prevUntil (zero or past: not at all). The tenant's
	// sessions end.
	rotateTenantKey(ctx context.Context, id, newHash string, prevUntil time.Time) error
	// rotateAdminKey adds newHash as an admin key; the current ones keep
	// working until oldUntil. Admin sessions end.
	rotateAdminKey(ctx context.Context, newHash string, oldUntil time.Time) error
	// setTenantDisabled disables (at non-zero) or enables a tenant;
	// disabling ends its sessions.
	setTenantDisabled(ctx context.Context, id string, at time.Time) error
	setTenantSecret(ctx context.Context, id, secret string) error

	createSession(ctx context.Context, idHash, principal, keyHash string, created, expires time.Time) error
	// session returns the principal and key hash of a live session.
	session(ctx context.Context, idHash string) (principal, keyHash string, err error)
	deleteSession(ctx context.Context, idHash string) error
	// deleteSessions ends every session of a principal ("" : everyone's).
	deleteSessions(ctx context.Context, principal string) (int64, error)
}

func (g *Gateway) kstore() (keyStore, error) {
	if ks, ok := g.store.(keyStore); ok {
		return ks, nil
	}
	return nil, errors.New("gateway: the store does not support sessions and key rotation")
}

func (s *sqlStore) rotateTenantKey(ctx context.Context, id, newHash string, prevUntil time.Time) error {
	return s.tx(ctx, func(tx *sqlTx) error {
		res, err := tx.ExecContext(ctx, s.d.q("UPDATE tenants SET prev_key_hash = key_hash, prev_key_until = ?, key_hash = ? WHERE id = ?"),
			ntime(prevUntil), newHash, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		_, err = tx.ExecContext(ctx, s.d.q("DELETE FROM sessions WHERE principal = ?"), id)
		return err
	})
}

func (s *sqlStore) rotateAdminKey(ctx context.Context, newHash string, oldUntil time.Time) error {
	now := s.clock.Now().UnixMilli()
	return s.tx(ctx, func(tx *sqlTx) error {
		if _, err := tx.ExecContext(ctx, s.d.q("UPDATE admin_keys SET expires_at = ? WHERE expires_at IS NULL OR expires_at > ?"),
			oldUntil.UnixMilli(), oldUntil.UnixMilli()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.q("DELETE FROM admin_keys WHERE expires_at IS NOT NULL AND expires_at <= ?"), now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.q("INSERT INTO admin_keys (key_hash, created_at) VALUES (?, ?)"), newHash, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.d.q("DELETE FROM sessions WHERE principal = ?"), adminPrincipal)
		return err
	})
}

func (s *sqlStore) setTenantDisabled(ctx context.Context, id string, at time.Time) error {
	return s.tx(ctx, func(tx *sqlTx) error {
		res, err := tx.ExecContext(ctx, s.d.q("UPDATE tenants SET disabled_at = ? WHERE id = ?"), ntime(at), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if at.IsZero() {
			return nil
		}
		_, err = tx.ExecContext(ctx, s.d.q("DELETE FROM sessions WHERE principal = ?"), id)
		return err
	})
}

func (s *sqlStore) setTenantSecret(ctx context.Context, id, secret string) error {
	res, err := s.w.ExecContext(ctx, s.d.q("UPDATE tenants SET secret = ? WHERE id = ?"), secret, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *sqlStore) createSession(ctx context.Context, idHash, principal, keyHash string, created, expires time.Time) error {
	return s.tx(ctx, func(tx *sqlTx) error {
		// Expired sessions go when new ones come (no separate sweep).
		if _, err := tx.ExecContext(ctx, s.d.q("DELETE FROM sessions WHERE expires_at <= ?"), created.UnixMilli()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.d.q("INSERT INTO sessions (id_hash, principal, key_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)"),
			idHash, principal, keyHash, created.UnixMilli(), expires.UnixMilli())
		return err
	})
}

func (s *sqlStore) session(ctx context.Context, idHash string) (string, string, error) {
	var principal, keyHash string
	err := s.r.QueryRowContext(ctx, s.d.q("SELECT principal, key_hash FROM sessions WHERE id_hash = ? AND expires_at > ?"),
		idHash, s.clock.Now().UnixMilli()).Scan(&principal, &keyHash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", ErrNotFound
	}
	return principal, keyHash, err
}

func (s *sqlStore) deleteSession(ctx context.Context, idHash string) error {
	_, err := s.w.ExecContext(ctx, s.d.q("DELETE FROM sessions WHERE id_hash = ?"), idHash)
	return err
}

func (s *sqlStore) deleteSessions(ctx context.Context, principal string) (int64, error) {
	var res sql.Result
	var err error
	if principal == "" {
		res, err = s.w.ExecContext(ctx, "DELETE FROM sessions")
	} else {
		res, err = s.w.ExecContext(ctx, s.d.q("DELETE FROM sessions WHERE principal = ?"), principal)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
