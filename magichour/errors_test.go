package magichour

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestStatusSentinels(t *testing.T) {
	t.Parallel()
	sentinels := []error{ErrInvalidRequest, ErrUnauthorized, ErrPaymentRequired, ErrForbidden, ErrNotFound, ErrRateLimited, ErrServer}
	for _, tc := range []struct {
		code int
		body string
		want error
		msg  string
	}{
		{400, `{"message":"style.prompt is required"}`, ErrInvalidRequest, "style.prompt is required"},
		{401, `{"message":"Unauthorized"}`, ErrUnauthorized, "check the API key"},
		{402, `{"message":"Not enough credits"}`, ErrPaymentRequired, "Not enough credits"},
		{403, `{"message":"Resolution not on plan"}`, ErrForbidden, "Resolution not on plan"},
		{404, `{"message":"Not Found"}`, ErrNotFound, "404 Not Found"},
		{422, `{"message":"Unable to create video"}`, ErrInvalidRequest, "Unable to create video"},
		{429, `{"message":"slow down"}`, ErrRateLimited, "slow down"},
		{500, `{"message":"oops"}`, ErrServer, "oops"},
		{502, "<html><body>Bad   gateway\n</body></html>", ErrServer, "unexpected response body: <html><body>Bad gateway </body></html>"},
		{503, ``, ErrServer, "503 Service Unavailable"},
	} {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("X-Request-Id", "req-123")
			w.WriteHeader(tc.code)
			io.WriteString(w, tc.body)
		})
		c := newTestClient(t, f.URL, fastRetry(1))
		_, err := c.GetProject(context.Background(), KindImage, "p1")
		for _, s := range sentinels {
			if got := errors.Is(err, s); got != (s == tc.want) {
				t.Errorf("%d: errors.Is(err, %v) = %v", tc.code, s, got)
			}
		}
		var apiErr *APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("%d: %T %v", tc.code, err, err)
		}
		if apiErr.StatusCode != tc.code || apiErr.RequestID != "req-123" || apiErr.Method != "GET" ||
			apiErr.Path != "/v1/image-projects/p1" || string(apiErr.Body) != tc.body {
			t.Errorf("%d: %+v", tc.code, apiErr)
		}
		if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "req-123") {
			t.Errorf("%d: message %q lacks %q", tc.code, err, tc.msg)
		}
		if errors.Is(err, ErrCreateOutcomeUnknown) {
			t.Errorf("%d: a GET reported an unknown create outcome", tc.code)
		}
	}
}

func TestValidationErrorIs(t *testing.T) {
	t.Parallel()
	err := error(&ValidationError{Tool: "face-swap", Fields: []FieldError{{Field: "assets", Message: "is required"}, {Message: "body"}}})
	if !errors.Is(err, ErrInvalidRequest) || errors.Is(err, ErrServer) {
		t.Error("ValidationError does not match ErrInvalidRequest only")
	}
	if got := err.Error(); got != "magichour: invalid face-swap request (nothing was sent): assets: is required; body" {
		t.Errorf("message %q", got)
	}
}

func TestOutcomeUnknownError(t *testing.T) {
	t.Parallel()
	cause := &APIError{StatusCode: 500, Method: "POST", Path: "/v1/face-swap"}
	err := error(&OutcomeUnknownError{Method: "POST", Path: "/v1/face-swap", Err: cause})
	var apiErr *APIError
	if !errors.Is(err, ErrCreateOutcomeUnknown) || !errors.Is(err, ErrServer) || !errors.As(err, &apiErr) {
		t.Error("OutcomeUnknownError does not unwrap to both ErrCreateOutcomeUnknown and its cause")
	}
	if !strings.Contains(err.Error(), "not retried") || !strings.Contains(err.Error(), "check your projects") {
		t.Errorf("message not actionable: %q", err)
	}
}

func TestSnippetTruncates(t *testing.T) {
	t.Parallel()
	s := snippet([]byte(strings.Repeat("x", 1000)))
	if len(s) > 260 || !strings.HasSuffix(s, "…") {
		t.Errorf("snippet %q", s)
	}
	if snippet(nil) != "" {
		t.Error("empty body gives a snippet")
	}
}
