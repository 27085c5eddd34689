package storagetest

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
)

// EnvS3 names the variable holding the test S3 bucket's URL, e.g.
// s3://hourglass-test?endpoint=http://127.0.0.1:7070&region=us-east-1&use_path_style=true
// (credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
// .ci/run starts a versitygw server and sets it.
const EnvS3 = "HOURGLASS_TEST_S3"

// S3URL returns the test bucket's URL with a fresh key prefix, or skips
// the test when EnvS3 is not set.
func S3URL(t testing.TB) string {
	t.Helper()
	raw := os.Getenv(EnvS3)
	if raw == "" {
		t.Skip(EnvS3 + " not set: no S3 server to test against (.ci/run starts one)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", EnvS3, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	q := u.Query()
	q.Set("prefix", "t-"+hex.EncodeToString(b))
	u.RawQuery = q.Encode()
	return u.String()
}

// S3Bucket returns the test bucket's name (S3URL's host).
func S3Bucket(t testing.TB) string {
	u, err := url.Parse(S3URL(t))
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// WithEndpoint returns rawURL with its endpoint parameter replaced.
func WithEndpoint(rawURL, endpoint string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	q := u.Query()
	q.Set("endpoint", endpoint)
	u.RawQuery = q.Encode()
	return u.String()
}
