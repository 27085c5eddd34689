package gateway

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// --- uploads ---

const uploadCols = "id, tenant_id, media, ext, token_hash, storage_key, size, sha256, upstream_path, created_at, expires_at, stored_at"

func (s *sqlStore) CreateUpload(ctx context.Context, u *Upload) error {
	_, err := s.w.ExecContext(ctx, s.d.q("INSERT INTO uploads ("+uploadCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		u.ID, u.TenantID, u.Media, u.Ext, u.TokenHash, nstr(u.StorageKey), nullSize(u), nstr(u.SHA256), nstr(u.UpstreamPath),
		u.CreatedAt.UnixMilli(), u.ExpiresAt.UnixMilli(), ntime(u.StoredAt))
	return err
}

func nullSize(u *Upload) any {
	if u.StoredAt.IsZero() {
		return nil
	}
	return u.Size
}

func (s *sqlStore) Upload(ctx context.Context, tenantID, id string) (*Upload, error) {
	q, args := "SELECT "+uploadCols+" FROM uploads WHERE id = ?", []any{id}
	if tenantID != "" {
		q, args = q+" AND tenant_id = ?", append(args, tenantID)
	}
	var u Upload
	var key, sum, up sql.NullString
	var size, stored sql.NullInt64
	var created, expires int64
	err := s.r.QueryRowContext(ctx, s.d.q(q), args...).Scan(&u.ID, &u.TenantID, &u.Media, &u.Ext, &u.TokenHash, &key, &size, &sum, &up,
		&created, &expires, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	u.StorageKey, u.Size, u.SHA256, u.UpstreamPath = key.String, size.Int64, sum.String, up.String
	u.CreatedAt, u.ExpiresAt, u.StoredAt = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC(), fromMilli(stored)
	return &u, nil
}

func (s *sqlStore) UpdateUpload(ctx context.Context, u *Upload) error {
	_, err := s.w.ExecContext(ctx, s.d.q("UPDATE uploads SET storage_key = ?, size = ?, sha256 = ?, upstream_path = ?, stored_at = ? WHERE id = ?"),
		nstr(u.StorageKey), nullSize(u), nstr(u.SHA256), nstr(u.UpstreamPath), ntime(u.StoredAt), u.ID)
	return err
}

// --- face detections ---

func (s *sqlStore) AddFaceDetection(ctx context.Context, id, tenantID string, at time.Time) error {
	_, err := s.w.ExecContext(ctx, s.d.q("INSERT INTO face_detections (id, tenant_id, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING"),
		id, tenantID, at.UnixMilli())
	return err
}

func (s *sqlStore) FaceDetectionTenant(ctx context.Context, id string) (string, error) {
	var t string
	err := s.r.QueryRowContext(ctx, s.d.q("SELECT tenant_id FROM face_detections WHERE id = ?"), id).Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return t, err
}
