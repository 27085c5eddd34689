package magichour

import (
	"testing"
	"time"
)

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/100", "bytes 50-99/*", "bytes 5-1/3", "bytes -1-2/3", "bytes 0-0/0", "items 0-1/2", "bytes 9223372036854775807-9223372036854775807/*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		start, size, ok := parseContentRange(v)
		if !ok {
			return
		}
		if start < 0 || size < -1 || (size >= 0 && start >= size) {
			t.Fatalf("%q: start %d size %d accepted", v, start, size)
		}
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "1", "1.5", "-3", "NaN", "1e300", "Wed, 21 Oct 2015 07:28:00 GMT", "soon"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d := parseRetryAfter(v, now)
		if d < 0 {
			t.Fatalf("%q: negative delay %v", v, d)
		}
	})
}

func TestParseContentRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in          string
		start, size int64
		ok          bool
	}{
		{"bytes 0-99/100", 0, 100, true},
		{"bytes 50-99/*", 50, -1, true},
		{"bytes 5-1/3", 0, 0, false},
		{"bytes 0-100/100", 0, 0, false},
		{"bytes -1-2/3", 0, 0, false},
		{"bytes 1-2/-3", 0, 0, false},
		{"items 0-1/2", 0, 0, false},
	}
	for _, tt := range tests {
		start, size, ok := parseContentRange(tt.in)
		if ok != tt.ok || (ok && (start != tt.start || size != tt.size)) {
			t.Errorf("%q = %d, %d, %v; want %d, %d, %v", tt.in, start, size, ok, tt.start, tt.size, tt.ok)
		}
	}
	if d := parseRetryAfter("1e300", time.Now()); d != maxRetryAfter {
		t.Errorf("huge Retry-After = %v, want the %v cap", d, maxRetryAfter)
	}
}
