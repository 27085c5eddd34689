package magichour

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Sentinel errors. Match them with errors.Is; the concrete error carries the
// details (*APIError, *ValidationError, *JobError, ...).
var (
	// ErrNoAPIKey is returned by NewClient when neither WithAPIKey nor the
	// MAGIC_HOUR_API_KEY environment variable provides a key.
	ErrNoAPIKey = errors.New("magichour: no API key: pass magichour.WithAPIKey(key) or set MAGIC_HOUR_API_KEY")

	// ErrInvalidRequest matches 400 and 422 answers and local validation
	// failures (*ValidationError). Fix the request; retrying will not help.
	ErrInvalidRequest = errors.New("magichour: invalid request")
	// ErrUnauthorized matches 401: the API key is missing, wrong or revoked.
	ErrUnauthorized = errors.New("magichour: unauthorized")
	// ErrPaymentRequired matches 402: not enough credits.
	ErrPaymentRequired = errors.New("magichour: payment required")
	// ErrForbidden matches 403: the key is valid but the plan does not
	// include the feature or resolution.
	ErrForbidden = errors.New("magichour: forbidden")
	// ErrNotFound matches 404: no such project.
	ErrNotFound = errors.New("magichour: not found")
	// ErrRateLimited matches 429 once retries are exhausted.
	ErrRateLimited = errors.New("magichour: rate limited")
	// ErrServer matches any 5xx answer once retries are exhausted (or, for a
	// create, when retrying could duplicate the job).
	ErrServer = errors.New("magichour: server error")

	// ErrCreateOutcomeUnknown is wrapped by errors from a create call whose
	// request may have reached the server without an answer (connection
	// reset, timeout waiting for the response, 500/504). A job may or may not
	// exist and may be charged; the client never retries such a create by
	// itself. Check your projects before resubmitting.
	ErrCreateOutcomeUnknown = errors.New("magichour: create outcome unknown")

	// ErrJobFailed is matched by *JobError: the project ended in status error.
	ErrJobFailed = errors.New("magichour: job failed")
	// ErrCanceled is matched by *CanceledError: the project was canceled
	// (cancel exists only in Magic Hour's dashboard). It is distinct from
	// context.Canceled.
	ErrCanceled = errors.New("magichour: project canceled")

	// ErrUnsupportedFile is returned for an input file whose extension the
	// API does not accept.
	ErrUnsupportedFile = errors.New("magichour: unsupported file type")

	// One sentinel per error code of the spec ({"code", "message"}
	// answers). Old-shape answers ({"message"} only) match by status:
	// 402 → ErrInsufficientCredits, 403 → ErrPlanUpgradeRequired,
	// 422 → ErrUnprocessableEntity, 500 → ErrInternalServerError.

	// ErrInsufficientCredits: code insufficient_credits (402): buy credits.
	ErrInsufficientCredits = errors.New("magichour: insufficient credits")
	// ErrSubscriptionRequired: code subscription_required (402): start a
	// subscription.
	ErrSubscriptionRequired = errors.New("magichour: subscription required")
	// ErrPlanUpgradeRequired: code plan_upgrade_required (402): a model or
	// resolution needs a higher tier.
	ErrPlanUpgradeRequired = errors.New("magichour: plan upgrade required")
	// ErrUnprocessableEntity: code unprocessable_entity (422): change the
	// request values.
	ErrUnprocessableEntity = errors.New("magichour: unprocessable entity")
	// ErrInternalServerError: code internal_server_error (500).
	ErrInternalServerError = errors.New("magichour: internal server error")
)

// The error codes of the spec, as APIError.Code carries them.
const (
	CodeInvalidRequest      = "invalid_request"
	CodeUnauthorized        = "unauthorized"
	CodeInsufficientCredits = "insufficient_credits"
	CodeSubscriptionReq     = "subscription_required"
	CodePlanUpgradeRequired = "plan_upgrade_required"
	CodeNotFound            = "not_found"
	CodeUnprocessable       = "unprocessable_entity"
	CodeInternalServerError = "internal_server_error"
)

// codeSentinels maps each spec code to its sentinel.
var codeSentinels = map[string]error{
	CodeInvalidRequest:      ErrInvalidRequest,
	CodeUnauthorized:        ErrUnauthorized,
	CodeInsufficientCredits: ErrInsufficientCredits,
	CodeSubscriptionReq:     ErrSubscriptionRequired,
	CodePlanUpgradeRequired: ErrPlanUpgradeRequired,
	CodeNotFound:            ErrNotFound,
	CodeUnprocessable:       ErrUnprocessableEntity,
	CodeInternalServerError: ErrInternalServerError,
}

// statusSentinels are what an answer without a code matches.
var statusSentinels = map[int]error{
	402: ErrInsufficientCredits, 403: ErrPlanUpgradeRequired, 422: ErrUnprocessableEntity, 500: ErrInternalServerError,
}

// APIError is a non-2xx answer from the API.
type APIError struct {
	StatusCode int
	// Code is the API's machine-readable "code" (CodeInsufficientCredits,
	// ...), empty for an answer in the old {"message"} shape.
	Code string
	// Message is the API's "message", or a snippet of a body that is not
	// JSON.
	Message string
	// RequestID is the server's request id header, when present; quote it
	// to Magic Hour support.
	RequestID string
	// Body is the raw response body (truncated to 64 KiB).
	Body []byte
	// Method and Path identify the request, e.g. "POST", "/v1/face-swap".
	Method, Path string
	// Attempts is how many times the request was sent.
	Attempts int
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "magichour: %s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Message != "" && e.Message != http.StatusText(e.StatusCode) {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if h := hint(e.StatusCode, e.Code); h != "" {
		b.WriteString("; ")
		b.WriteString(h)
	}
	return b.String()
}

func hint(code int, apiCode string) string {
	switch apiCode {
	case CodeSubscriptionReq:
		return "start a subscription"
	case CodePlanUpgradeRequired:
		return "this model or resolution needs a higher plan: upgrade, or choose another"
	}
	switch {
	case code == 401:
		return "check the API key (WithAPIKey or MAGIC_HOUR_API_KEY)"
	case code == 402:
		return "not enough credits: top up the account"
	case code == 403:
		return "the key's plan does not include this feature or resolution"
	case code == 429:
		return "rate limited: slow down or raise RetryPolicy.MaxAttempts"
	case code >= 500:
		return "server-side problem: try again later"
	}
	return ""
}

// Is matches the sentinel of the error code (or, for an answer without a
// code, of the status) and the sentinel of the status code.
func (e *APIError) Is(target error) bool {
	if e.Code != "" {
		if s, ok := codeSentinels[e.Code]; ok && s == target {
			return true
		}
	} else if s, ok := statusSentinels[e.StatusCode]; ok && s == target {
		return true
	}
	switch target {
	case ErrInvalidRequest:
		return e.StatusCode == 400 || e.StatusCode == 422
	case ErrUnauthorized:
		return e.StatusCode == 401
	case ErrPaymentRequired:
		return e.StatusCode == 402
	case ErrForbidden:
		return e.StatusCode == 403
	case ErrNotFound:
		return e.StatusCode == 404
	case ErrRateLimited:
		return e.StatusCode == 429
	case ErrServer:
		return e.StatusCode >= 500
	}
	return false
}

// Temporary reports whether the error is worth retrying later (429 or 5xx).
func (e *APIError) Temporary() bool { return e.StatusCode == 429 || e.StatusCode >= 500 }

const maxErrorBody = 64 << 10

// newAPIError builds an APIError from a response whose body has been read.
func newAPIError(method, path string, resp *http.Response, body []byte) *APIError {
	e := &APIError{
		StatusCode: resp.StatusCode,
		RequestID:  requestID(resp.Header),
		Body:       body,
		Method:     method,
		Path:       path,
	}
	var msg struct {
		Code    any    `json:"code"`
		Message string `json:"message"`
		Error   any    `json:"error"`
	}
	err := json.Unmarshal(body, &msg)
	if c, ok := msg.Code.(string); ok && err == nil {
		e.Code = c
	}
	if err == nil && msg.Message != "" {
		e.Message = msg.Message
	} else if err == nil && msg.Error != nil {
		e.Message = fmt.Sprint(msg.Error)
	} else {
		e.Message = snippet(body)
	}
	return e
}

func requestID(h http.Header) string {
	for _, k := range []string{"X-Request-Id", "Request-Id", "X-Amzn-Requestid", "X-Amz-Request-Id", "X-Correlation-Id", "Cf-Ray"} {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// snippet returns a short single-line printable prefix of a non-JSON body.
func snippet(b []byte) string {
	const max = 200
	s := strings.TrimSpace(string(b))
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	if s == "" {
		return ""
	}
	return "unexpected response body: " + s
}

// OutcomeUnknownError is returned by a create call when the request may have
// been received without an answer reaching the client. It matches
// ErrCreateOutcomeUnknown and, through Err, the underlying cause (a network
// error, context.DeadlineExceeded, or an *APIError for a 500/504).
type OutcomeUnknownError struct {
	Method, Path string
	Err          error
}

func (e *OutcomeUnknownError) Error() string {
	return fmt.Sprintf("magichour: %s %s: create outcome unknown: the request may have reached Magic Hour and started a (charged) job, "+
		"so it was not retried to avoid a duplicate; check your projects before resubmitting: %v", e.Method, e.Path, e.Err)
}

// Unwrap returns ErrCreateOutcomeUnknown and the cause.
func (e *OutcomeUnknownError) Unwrap() []error { return []error{ErrCreateOutcomeUnknown, e.Err} }

// FieldError is one local validation failure. Field is the dotted JSON path
// ("assets.face_mappings[0].new_face"), empty for the whole body.
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) String() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// ValidationError is returned, before anything is sent, when a request body
// breaks the rules of the API spec. It matches ErrInvalidRequest.
type ValidationError struct {
	Tool   string
	Fields []FieldError
	// Hint, when set, says the refusal comes from the catalog's enums or
	// ranges, names its date and the ways out (a newer catalog with
	// WithSpec, or WithoutValidation).
	Hint string
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.String()
	}
	msg := fmt.Sprintf("magichour: invalid %s request (nothing was sent): %s", e.Tool, strings.Join(msgs, "; "))
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Is matches ErrInvalidRequest.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidRequest }

// JobError is a project that ended in status error. No credits are charged
// for a failed job.
type JobError struct {
	ProjectID string
	Kind      Kind
	Code      string // e.g. "no_source_face", "invalid_video_file"
	Message   string
}

func (e *JobError) Error() string {
	msg := fmt.Sprintf("magichour: %s project %s failed", e.Kind, e.ProjectID)
	if e.Code != "" {
		msg += ": " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Is matches ErrJobFailed.
func (e *JobError) Is(target error) bool { return target == ErrJobFailed }

// CanceledError is a project that was canceled (from the dashboard). It
// matches ErrCanceled.
type CanceledError struct {
	ProjectID string
	Kind      Kind
}

func (e *CanceledError) Error() string {
	return fmt.Sprintf("magichour: %s project %s was canceled", e.Kind, e.ProjectID)
}

// Is matches ErrCanceled.
func (e *CanceledError) Is(target error) bool { return target == ErrCanceled }

// Err returns the error a terminal project stands for: nil when
// complete, a *JobError for status error, a *CanceledError for canceled, and
// nil for non-terminal statuses.
func (p *Project) Err() error {
	switch p.Status {
	case StatusError:
		je := &JobError{ProjectID: p.ID, Kind: p.Kind}
		if p.Error != nil {
			je.Code, je.Message = p.Error.Code, p.Error.Message
		}
		return je
	case StatusCanceled:
		return &CanceledError{ProjectID: p.ID, Kind: p.Kind}
	}
	return nil
}
