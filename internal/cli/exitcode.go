package cli

import (
	"context"
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

// oneLine makes an error message fit one line, without the package prefix.
func oneLine(err error) string {
	s := err.Error()
	s = strings.ReplaceAll(s, "magichour: ", "")
	s = strings.Join(strings.Fields(s), " ")
	return s
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
