package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/hourglasshq/hourglass/magichour"
)

// Exit codes of the hourglass command (documented in docs/cli.md).
const (
	ExitOK       = 0 // success
	ExitJob      = 1 // the job ended in error or was canceled
	ExitUsage    = 2 // bad flag, missing required flag, invalid value, bad file: nothing was sent
	ExitAPI      = 3 // API or HTTP error, network failure
	ExitInterrup = 4 // timeout or interrupted
)

// exitError carries an exit code and an already formatted message. Silent
// errors have been reported to the user already (for example in the --json
// result) and print nothing more.
type exitError struct {
	code   int
	msg    string
	silent bool
	err    error
	// emitted: the one JSON object of --json (with this error in it) is
	// already on stdout.
	emitted bool
}

func (e *exitError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit %d", e.code)
}

func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: ExitUsage, msg: fmt.Sprintf(format, args...)}
}

// ExitCode maps an error returned by a command to the process exit code.
// Errors the commands did not classify come from cobra itself (unknown
// command, bad flag syntax) and are usage errors.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	if e, ok := errors.AsType[*exitError](err); ok {
		return e.code
	}
	if isCobraUsage(err) {
		return ExitUsage
	}
	return ExitJob
}

// isCobraUsage recognizes cobra's own usage errors by their wording.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, s := range []string{"unknown command", "unknown flag", "unknown shorthand", "arg(s)", "required flag", "invalid argument", "flag needs an argument"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// classify picks the exit code of an error from the SDK; ctx is the
// command's context (a canceled or expired context means 4).
func classify(err error, ctx context.Context) int {
	if e, ok := errors.AsType[*exitError](err); ok {
		return e.code
	}
	switch {
	case ctx != nil && ctx.Err() != nil,
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return ExitInterrup
	case errors.Is(err, magichour.ErrJobFailed), errors.Is(err, magichour.ErrCanceled):
		return ExitJob
	case errors.Is(err, magichour.ErrNoAPIKey), errors.Is(err, magichour.ErrUnsupportedFile):
		return ExitUsage
	}
	if _, ok := errors.AsType[*magichour.ValidationError](err); ok {
		return ExitUsage
	}
	if _, ok := errors.AsType[*magichour.APIError](err); ok {
		return ExitAPI
	}
	if errors.Is(err, magichour.ErrCreateOutcomeUnknown) {
		return ExitAPI
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return ExitAPI
	}
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return ExitAPI
	}
	if errors.Is(err, magichour.ErrInvalidRequest) {
		return ExitUsage
	}
	if _, ok := errors.AsType[*os.PathError](err); ok {
		return ExitUsage
	}
	return ExitUsage
}

// apiError wraps an SDK error from a command into an exitError with its
// exit code and a one-line message.
func apiError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*exitError](err); ok {
		return err
	}
	code := classify(err, ctx)
	// Everything that is neither usage nor job nor interruption here came
	// from talking to the API.
	if code == ExitUsage && !isUsageSDKError(err) {
		code = ExitAPI
	}
	return &exitError{code: code, msg: oneLine(err), err: err}
}

func isUsageSDKError(err error) bool {
	if _, ok := errors.AsType[*magichour.ValidationError](err); ok {
		return true
	}
	return errors.Is(err, magichour.ErrNoAPIKey) || errors.Is(err, magichour.ErrUnsupportedFile) ||
		(errors.Is(err, magichour.ErrInvalidRequest) && !isAPIStatus(err))
}

func isAPIStatus(err error) bool {
	_, ok := errors.AsType[*magichour.APIError](err)
	return ok
}

// oneLine makes an error message fit one line, in the CLI's words: no
// package prefix, flags instead of SDK option names.
func oneLine(err error) string {
	s := err.Error()
	s = strings.ReplaceAll(s, "magichour: ", "")
	s = cliWords.Replace(s)
	s = strings.Join(strings.Fields(s), " ")
	return s
}

// cliWords maps the SDK's vocabulary in error messages to the CLI's.
var cliWords = strings.NewReplacer(
	"(WithAPIKey or MAGIC_HOUR_API_KEY)", "(--api-key, the profile's api_key, or $MAGIC_HOUR_API_KEY)",
	"WithAPIKey", "--api-key",
	"WithBaseURL", "--base-url",
	"WithOutputDir", "-o",
	"WithTimeout", "--timeout",
	"WithoutValidation()", "--no-validate",
	"WithoutValidation", "--no-validate",
	"slow down or raise RetryPolicy.MaxAttempts", "slow down and try again",
)

// errorCode is the machine-readable code of an error in --json output.
func errorCode(err error, code int) string {
	if je, ok := errors.AsType[*magichour.JobError](err); ok && je.Code != "" {
		return je.Code
	}
	switch code {
	case ExitUsage:
		return "usage_error"
	case ExitJob:
		if errors.Is(err, magichour.ErrCanceled) {
			return "canceled"
		}
		return "job_failed"
	case ExitInterrup:
		if errors.Is(err, context.DeadlineExceeded) {
			return "timeout"
		}
		return "interrupted"
	}
	if ae, ok := errors.AsType[*magichour.APIError](err); ok {
		switch {
		case ae.StatusCode == 401:
			return "unauthorized"
		case ae.StatusCode == 402:
			return "payment_required"
		case ae.StatusCode == 403:
			return "forbidden"
		case ae.StatusCode == 404:
			return "not_found"
		case ae.StatusCode == 429:
			return "rate_limited"
		case ae.StatusCode >= 500:
			return "server_error"
		}
		return "invalid_request"
	}
	if errors.Is(err, magichour.ErrCreateOutcomeUnknown) {
		return "create_outcome_unknown"
	}
	return "api_error"
}

// jsonError is the JSON object of an error with no project to report.
type jsonError struct {
	Error    *jobError `json:"error"`
	ExitCode int       `json:"exit_code"`
}

// ReportJSON reports err for --json: exactly one JSON object on stdout
// (unless the command printed it already), the message on stderr too.
func ReportJSON(stdout, stderr io.Writer, err error) int {
	code := Report(stderr, err)
	if err == nil {
		return code
	}
	if e, ok := errors.AsType[*exitError](err); ok && (e.emitted || e.silent) {
		return code
	}
	msg := err.Error()
	if e, ok := errors.AsType[*exitError](err); ok && e.msg == "" && e.err != nil {
		msg = oneLine(e.err)
	}
	b, _ := json.Marshal(jsonError{Error: &jobError{Code: errorCode(err, code), Message: msg}, ExitCode: code})
	fmt.Fprintf(stdout, "%s\n", b)
	return code
}

// Report prints err (unless it is silent) to w the way the CLI shows
// errors, and returns the exit code.
func Report(w io.Writer, err error) int {
	if err == nil {
		return ExitOK
	}
	code := ExitCode(err)
	if e, ok := errors.AsType[*exitError](err); ok && e.silent {
		return code
	}
	msg := err.Error()
	fmt.Fprintln(w, "hourglass: "+msg)
	if code == ExitUsage {
		if _, ok := errors.AsType[*exitError](err); !ok && isCobraUsage(err) {
			// cobra's own errors: point at --help.
			fmt.Fprintln(w, "Run with --help for usage.")
		}
	}
	return code
}
