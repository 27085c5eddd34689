package storagetest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// S3Server is a versitygw process (an S3-compatible server on a POSIX
// folder) owned by one test, for faults the shared server must not see:
// restarts, outages.
type S3Server struct {
	t      testing.TB
	bin    string
	root   string
	addr   string
	Bucket string
	cmd    *exec.Cmd
	done   chan struct{}
}

// Test credentials of an S3Server.
const (
	S3AccessKey = "hourglass"
	S3SecretKey = "hourglass-secret"
)

// StartS3Server starts versitygw on a free loopback port with a bucket
// "hourglass", or skips the test when versitygw is not installed. It sets
// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for the test (so the test must
// not be parallel).
func StartS3Server(t *testing.T) *S3Server {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		t.Skip("versitygw not installed: go install github.com/versity/versitygw/cmd/versitygw@latest (.ci/run does)")
	}
	s := &S3Server{t: t, bin: bin, root: t.TempDir(), Bucket: "hourglass"}
	if err := os.MkdirAll(filepath.Join(s.root, s.Bucket), 0o750); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	ln.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", S3AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", S3SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the bucket's storage URL.
func (s *S3Server) URL() string {
	return fmt.Sprintf("s3://%s?endpoint=http://%s&region=us-east-1&use_path_style=true", s.Bucket, s.addr)
}

// Root is the folder holding the buckets.
func (s *S3Server) Root() string { return s.root }

// Start starts the server (again) on its address and waits until it
// answers.
func (s *S3Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command(s.bin, "--port", s.addr, "--quiet", "posix", s.root)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+S3AccessKey, "ROOT_SECRET_ACCESS_KEY="+S3SecretKey)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start versitygw: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("versitygw did not answer on %s", s.addr)
		case <-s.done:
			s.t.Fatalf("versitygw exited at start (port %s taken?)", s.addr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop kills the server (SIGKILL: a crash, not a clean shutdown) and
// waits for it to exit.
func (s *S3Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}
