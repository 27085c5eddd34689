package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/magichour"
)

// emulatorSpeed is how much faster than real time --emulator runs jobs.
const emulatorSpeed = 50

// register adds the API commands and their global flags to root. It is
// called once from NewRoot.
func register(root *cobra.Command) {
	pf := root.PersistentFlags()
	addString := func(name, short, usage string) {
		if pf.Lookup(name) == nil {
			pf.StringP(name, short, "", usage)
		}
	}
	addString("api-key", "", "Magic Hour API key (default $"+magichour.EnvAPIKey+")")
	addString("base-url", "", "API base URL (default $MAGIC_HOUR_BASE_URL, else https://api.magichour.ai; e.g. http://127.0.0.1:8787 for hourglass emulate)")
	if pf.Lookup("emulator") == nil {
		pf.Bool("emulator", false, "run against an in-process emulator (no key needed; results are placeholders)")
	}
	if pf.Lookup("timeout") == nil {
		pf.Duration("timeout", 0, "give up after this long (e.g. 10m); exit code 4")
	}
	if pf.Lookup("json") == nil {
		pf.Bool("json", false, "print one machine-readable JSON object on stdout")
	}
	if pf.Lookup("quiet") == nil {
		pf.BoolP("quiet", "q", false, "no progress output on stderr")
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: ExitUsage, msg: err.Error() + " (see --help)"}
	})
	root.AddCommand(toolGroups()...)
	root.AddCommand(newFilesCmd(), newFacesCmd(), newWebhookCmd())
}

// env is what one command run needs: flags, streams and the client.
type env struct {
	cmd      *cobra.Command
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	json     bool
	quiet    bool
	tty      bool // stderr is a terminal: live progress
	color    bool // colors on stdout
	colorErr bool // colors on stderr
	emulated bool
	scale    float64 // time scale of the emulator, 1 for the real API

	client  *magichour.Client
	cleanup func()
}

func newEnv(cmd *cobra.Command) *env {
	e := &env{
		cmd:     cmd,
		stdin:   cmd.InOrStdin(),
		stdout:  cmd.OutOrStdout(),
		stderr:  cmd.ErrOrStderr(),
		scale:   1,
		cleanup: func() {},
	}
	e.json, _ = cmd.Flags().GetBool("json")
	e.quiet, _ = cmd.Flags().GetBool("quiet")
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb" {
		e.tty = true
	}
	_, noColor := os.LookupEnv("NO_COLOR")
	e.colorErr = e.tty && !noColor
	if f, ok := e.stdout.(*os.File); ok && !noColor && term.IsTerminal(int(f.Fd())) {
		e.color = true
	}
	return e
}

// context returns the command's context with the global --timeout applied.
func (e *env) context() (context.Context, context.CancelFunc) {
	ctx := e.cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if d, _ := e.cmd.Flags().GetDuration("timeout"); d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// connect builds the API client from --api-key / $MAGIC_HOUR_API_KEY,
// --base-url, or an in-process emulator with --emulator. A missing key is
// a usage error that suggests --emulator.
func (e *env) connect(ctx context.Context) error {
	key, _ := e.cmd.Flags().GetString("api-key")
	base, _ := e.cmd.Flags().GetString("base-url")
	useEmu, _ := e.cmd.Flags().GetBool("emulator")
	opts := []magichour.Option{magichour.WithUserAgent("hourglass-cli/" + Version)}
	if useEmu {
		srv, err := emulator.Listen(context.WithoutCancel(ctx), "127.0.0.1:0", emulator.WithSpeed(emulatorSpeed))
		if err != nil {
			return &exitError{code: ExitAPI, msg: "start the emulator: " + err.Error()}
		}
		e.cleanup = srv.Close
		key, base = srv.APIKey, srv.URL
		e.emulated, e.scale = true, emulatorSpeed
	}
	if strings.TrimSpace(key) == "" {
		key = os.Getenv(magichour.EnvAPIKey)
	}
	if strings.TrimSpace(key) == "" {
		return usageErrorf("no API key: set %s or pass --api-key (or add --emulator to try it offline against a local emulator, no key needed)", magichour.EnvAPIKey)
	}
	opts = append(opts, magichour.WithAPIKey(key))
	if base != "" {
		opts = append(opts, magichour.WithBaseURL(base))
	}
	c, err := magichour.NewClient(opts...)
	if err != nil {
		return &exitError{code: ExitUsage, msg: oneLine(err), err: err}
	}
	e.client = c
	return nil
}

// waitOptions are the polling options for a project of the given tool
// (empty tool: unknown). MAGIC_HOUR_POLL_INTERVAL (seconds), as in the
// official SDKs, caps the interval between polls.
func (e *env) waitOptions(tool magichour.Tool, onStatus func(*magichour.Project)) []magichour.WaitOption {
	var opts []magichour.WaitOption
	if onStatus != nil {
		opts = append(opts, magichour.WithStatusCallback(onStatus))
	}
	if tool != "" {
		opts = append(opts, magichour.WithTool(tool))
	}
	if e.scale > 1 {
		opts = append(opts, magichour.WithTimeScale(e.scale))
	}
	if s := os.Getenv("MAGIC_HOUR_POLL_INTERVAL"); s != "" {
		if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 {
			opts = append(opts, magichour.WithMaxInterval(time.Duration(f*float64(time.Second))))
		}
	}
	return opts
}

// note prints an informational line on stderr unless --quiet.
func (e *env) note(format string, args ...any) {
	if e.quiet {
		return
	}
	fmt.Fprintf(e.stderr, format+"\n", args...)
}

const emulatorNote = "note: --emulator: this ran on a local in-process emulator; the outputs are placeholders, not real Magic Hour results"
