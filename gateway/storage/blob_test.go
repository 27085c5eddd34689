package storage_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/gateway/storage"
	"github.com/hourglasshq/hourglass/gateway/storage/storagetest"
)

func TestS3Conformance(t *testing.T) {
	t.Parallel()
	u := storagetest.S3URL(t)
	s, err := storage.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.(storage.Closer).Close()
	storagetest.Run(t, s, "ten")
}

// TestS3Misconfigured: a wrong bucket, wrong credentials and an endpoint
// nobody listens on are each reported by Check with what is wrong.
func TestS3Misconfigured(t *testing.T) {
	good := storagetest.S3URL(t)
	ctx := context.Background()
	cases := []struct {
		name, url, want string
		env             map[string]string
	}{
		{"NoSuchBucket", strings.Replace(good, "s3://"+storagetest.S3Bucket(t), "s3://no-such-bucket-hg", 1), "does not exist", nil},
		{"WrongCredentials", good, "denied", map[string]string{"AWS_SECRET_ACCESS_KEY": "wrong-secret"}},
		{"NoEndpoint", storagetest.WithEndpoint(good, "http://127.0.0.1:1"), "unreachable", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v) // the SDK reads the environment at open
			}
			s, err := storage.Open(ctx, c.url)
			if err != nil {
				t.Fatal(err)
			}
			defer s.(storage.Closer).Close()
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			err = s.(storage.Checker).Check(cctx)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("check: %v, want %q", err, c.want)
			}
		})
	}
}
