package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"gocloud.dev/aws"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
)

// BlobStore keeps objects in a bucket through gocloud.dev/blob: S3 and
// S3-compatible servers (tested), Google Cloud Storage and Azure Blob
// Storage (registered, untested).
//
// Put streams through the driver's writer (for S3 the SDK's transfer
// manager: one PUT for a small object, a multipart upload of 5 MiB parts
// otherwise, so at most a few parts are in memory). Atomicity is S3's own:
// an object becomes visible only when its single PUT or its
// CompleteMultipartUpload succeeds, and a write whose context is canceled
// before Close is aborted (its parts are discarded). So no temporary key
// and copy is needed. After the write, Put reads the object's attributes
// back and refuses it (deleting it) unless its size is what was written.
type BlobStore struct {
	bucket *blob.Bucket
	desc   string // the URL without secrets, for messages
	name   string // bucket name
}

// NewBlobStore wraps an open bucket; desc names it in messages. The
// BlobStore owns the bucket: Close closes it.
func NewBlobStore(b *blob.Bucket, name, desc string) *BlobStore {
	return &BlobStore{bucket: b, name: name, desc: desc}
}

// openBlobURL opens s3://, gs:// and azblob:// URLs. A "prefix" query
// parameter keeps every key under that prefix (one bucket shared by
// several gateways or tests).
func openBlobURL(ctx context.Context, u *url.URL) (Storage, error) {
	desc := Redact(u.String())
	if u.Host == "" {
		return nil, fmt.Errorf("storage: %s: no bucket name (want %s://BUCKET?...)", desc, u.Scheme)
	}
	q := u.Query()
	prefix := q.Get("prefix")
	q.Del("prefix")
	u2 := *u
	u2.RawQuery = q.Encode()
	var (
		b   *blob.Bucket
		err error
	)
	switch u.Scheme {
	case "s3":
		b, err = openS3(ctx, &u2)
	default:
		b, err = openCloudBucket(ctx, &u2)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", desc, err)
	}
	if prefix != "" {
		if !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		b = blob.PrefixedBucket(b, prefix)
	}
	return NewBlobStore(b, u.Host, desc), nil
}

// openS3 opens s3://BUCKET?... like s3blob's URL opener (the same query
// parameters: use_path_style, disable_https, ssetype, kmskeyid, and
// gocloud.dev/aws's region, endpoint, profile, anonymous, ...), with one
// change: the SDK does not log every ranged read whose answer carries no
// whole-object checksum (a debug line per Range request otherwise).
func openS3(ctx context.Context, u *url.URL) (*blob.Bucket, error) {
	q := u.Query()
	var s3opts []func(*s3.Options)
	opts := s3blob.Options{}
	for _, k := range []string{"use_path_style", "s3ForcePathStyle", "disable_https"} {
		v := q.Get(k)
		if v == "" {
			continue
		}
		q.Del(k)
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("invalid value for %q: %w", k, err)
		}
		if k == "disable_https" {
			s3opts = append(s3opts, func(o *s3.Options) { o.EndpointOptions.DisableHTTPS = on })
		} else {
			s3opts = append(s3opts, func(o *s3.Options) { o.UsePathStyle = on })
		}
	}
	if v := q.Get("ssetype"); v != "" {
		q.Del("ssetype")
		opts.EncryptionType = types.ServerSideEncryption(v)
	}
	if v := q.Get("kmskeyid"); v != "" {
		q.Del("kmskeyid")
		opts.KMSEncryptionID = v
	}
	cfg, err := aws.V2ConfigFromURLParams(ctx, q)
	if err != nil {
		return nil, err
	}
	s3opts = append(s3opts, func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	opts.RequestChecksumCalculation = cfg.RequestChecksumCalculation
	return s3blob.OpenBucket(ctx, s3.NewFromConfig(cfg, s3opts...), u.Host, &opts)
}

// Put implements Storage.
func (s *BlobStore) Put(ctx context.Context, key string, r io.Reader) (int64, string, error) {
	if err := CheckKey(key); err != nil {
		return 0, "", err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.bucket.NewWriter(wctx, key, nil)
	if err != nil {
		return 0, "", fmt.Errorf("storage: put %s: %w", key, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), ctxReader{ctx, r})
	if err != nil {
		cancel() // aborts the upload: nothing becomes visible
		_ = w.Close()
		return 0, "", fmt.Errorf("storage: put %s: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return 0, "", fmt.Errorf("storage: put %s: %w", key, err)
	}
	attrs, err := s.bucket.Attributes(ctx, key)
	if err != nil {
		return 0, "", fmt.Errorf("storage: put %s: read back: %w", key, err)
	}
	if attrs.Size != n {
		_ = s.bucket.Delete(context.WithoutCancel(ctx), key)
		return 0, "", fmt.Errorf("storage: put %s: stored %d bytes, wrote %d", key, attrs.Size, n)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// Open implements Storage. The reader is a blob.Reader: a read after a
// seek starts a ranged GET at that offset.
func (s *BlobStore) Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error) {
	if err := CheckKey(key); err != nil {
		return nil, 0, err
	}
	r, err := s.bucket.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, 0, ErrNotFound
		}
		return nil, 0, fmt.Errorf("storage: open %s: %w", key, err)
	}
	return r, r.Size(), nil
}

// Delete implements Storage.
func (s *BlobStore) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := s.bucket.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("storage: delete %s: %w", key, err)
	}
	return nil
}

// PresignGet implements Presigner.
func (s *BlobStore) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return s.bucket.SignedURL(ctx, key, &blob.SignedURLOptions{Expiry: ttl, Method: "GET"})
}

// Check implements Checker: the bucket exists and the credentials may use
// it.
func (s *BlobStore) Check(ctx context.Context) error {
	ok, err := s.bucket.IsAccessible(ctx)
	switch {
	case err == nil && ok:
		return nil
	case err == nil:
		return fmt.Errorf("storage %s: bucket %q does not exist", s.desc, s.name)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchBucket":
			return fmt.Errorf("storage %s: bucket %q does not exist: %w", s.desc, s.name, err)
		case "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken", "InvalidClientTokenId":
			return fmt.Errorf("storage %s: access to bucket %q denied (%s: check the credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws): %w", s.desc, s.name, ae.ErrorCode(), err)
		}
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return fmt.Errorf("storage %s: bucket %q does not exist: %w", s.desc, s.name, err)
	case gcerrors.PermissionDenied:
		return fmt.Errorf("storage %s: access to bucket %q denied (check the credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws): %w", s.desc, s.name, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("storage %s: endpoint unreachable (no answer in time): %w", s.desc, err)
	}
	return fmt.Errorf("storage %s: bucket %q unreachable: %w", s.desc, s.name, err)
}

// Close implements Closer.
func (s *BlobStore) Close() error { return s.bucket.Close() }
