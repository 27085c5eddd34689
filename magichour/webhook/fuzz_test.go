package webhook

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// FuzzVerify checks that Verify never panics on arbitrary headers and
// bodies, that what Sign produces always verifies, and that a signature
// never verifies a different body, timestamp or secret.
func FuzzVerify(f *testing.F) {
	f.Add(vecSecret, int64(vecTS), []byte(vecBody), vecSig, "1700000000")
	f.Add(vec2Secret, int64(vec2TS), []byte(vec2Body), vec2Sig+","+vecSig, "1731000000")
	f.Add("k", int64(0), []byte(""), "", "")
	f.Add("s", int64(-5), []byte("{}"), " , ", "-5")
	f.Add("s", int64(1<<62), []byte("x"), "ZZ", "99999999999999999999")
	f.Fuzz(func(t *testing.T, secret string, ts int64, body []byte, sigHeader, tsHeader string) {
		now := time.Unix(ts, 0)

		// Arbitrary headers: no panic, and only the documented errors.
		h := http.Header{}
		h.Set(HeaderSignature, sigHeader)
		h.Set(HeaderTimestamp, tsHeader)
		err := Verify(secret, h, body, now)
		switch {
		case err == nil,
			errors.Is(err, ErrMissingSignature), errors.Is(err, ErrMissingTimestamp),
			errors.Is(err, ErrInvalidTimestamp), errors.Is(err, ErrTimestampOutOfRange),
			errors.Is(err, ErrInvalidSignature), errors.Is(err, ErrNoSecret):
		default:
			t.Fatalf("undocumented error %v", err)
		}
		if err == nil && secret == "" {
			t.Fatal("empty secret verified")
		}

		if ts < 0 || secret == "" {
			return // not representable in the header / rejected by design
		}
		// Round trip.
		sh := Headers(secret, now, body)
		if err := Verify(secret, sh, body, now); err != nil {
			t.Fatalf("Verify(Sign) = %v", err)
		}
		if err := VerifyAny([]string{secret + "x", secret}, sh, body, now); err != nil {
			t.Fatalf("VerifyAny(Sign) = %v", err)
		}
		if got := Sign(secret, now, body); len(got) != 64 || got != sh.Get(HeaderSignature) {
			t.Fatalf("Sign = %q", got)
		}
		// A different body, timestamp or secret fails.
		if err := Verify(secret, sh, append(body[:len(body):len(body)], 'x'), now); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("appended body: %v", err)
		}
		if err := Verify(secret+"x", sh, body, now); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("other secret: %v", err)
		}
		moved := sh.Clone()
		moved.Set(HeaderTimestamp, strconv.FormatInt(ts^1, 10))
		if err := VerifyWithTolerance(secret, moved, body, now, -1); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("other timestamp: %v", err)
		}
		if err := Verify(secret, sh, body, now.Add(DefaultTolerance+time.Second)); !errors.Is(err, ErrTimestampOutOfRange) {
			t.Fatalf("stale: %v", err)
		}
	})
}

// FuzzParse checks that Parse never panics and keeps its documented
// contract: an event with a type and an id, or nil and an error (except for
// unknown types, which come with the event).
func FuzzParse(f *testing.F) {
	f.Add([]byte(vecBody))
	f.Add([]byte(vec2Body))
	f.Add([]byte(`{"type":"video.canceled","payload":{"id":"x"}}`))
	f.Add([]byte(`{"type":"audio.started","payload":{"id":"a","downloads":[{"url":"u","expires_at":"2025-01-01T00:00:00Z"}],"error":{"code":"c","message":"m"}}}`))
	f.Add([]byte(`{"type":"","payload":null}`))
	f.Add([]byte(`null`))
	f.Add([]byte(` {"type":"image.completed","payload":{"id":"i","width":1e400}} `))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := Parse(body)
		if err != nil && !errors.Is(err, ErrUnknownEvent) {
			if e != nil {
				t.Fatalf("event with error %v", err)
			}
			for _, s := range []error{ErrMalformedBody, ErrMissingType, ErrMissingPayload, ErrMissingProjectID} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("undocumented error %v", err)
		}
		if e == nil || e.Type == "" || e.Payload.ID == "" || len(e.Raw) == 0 {
			t.Fatalf("Parse = %+v, %v", e, err)
		}
		if (err == nil) != e.Type.Known() {
			t.Fatalf("type %q known=%v err=%v", e.Type, e.Type.Known(), err)
		}
		// Raw parses to the same payload.
		e2, err2 := Parse([]byte(`{"type":"video.started","payload":` + string(e.Raw) + `}`))
		if err2 != nil || e2.Payload.ID != e.Payload.ID {
			t.Fatalf("re-parse of Raw: %v", err2)
		}
	})
}
