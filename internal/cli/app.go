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
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/magichour"
)

// emulatorSpeed is how much faster than real time --emulator runs jobs.
const emulatorSpeed = 50

// register adds the API commands to root. It is called once from NewRoot;
// the API flags go on each command group that uses them (addAPIFlags), not
// on the root, so serve, emulate and webhook list only what they read.
func register(root *cobra.Command, cat *catalog.Catalog) {
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(toolGroups(cat)...)
	root.AddCommand(newAccountCmd(), newSavedItemsCmd(), newCatalogCmd())
	root.AddCommand(newFilesCmd(), newFacesCmd(), newWebhookCmd(), newConfigCmd(), newListenCmd(), newAdminCmd())
}

// noAPIFlags are the top-level commands that do not talk to Magic Hour
// through a client of their own and so take none of the API flags.
var noAPIFlags = map[string]bool{
	"serve": true, "mcp": true, "emulate": true, "version": true, "config": true, "webhook": true, "catalog": true,
	"listen": true, "admin": true, "completion": true, "help": true,
}

// addAPIFlagsToGroups gives every other top-level command the API flags.
func addAPIFlagsToGroups(root *cobra.Command) {
	for _, c := range root.Commands() {
		if !noAPIFlags[c.Name()] {
			addAPIFlags(c.PersistentFlags())
		}
	}
}

// addAPIFlags adds the flags of commands that call the API: connection,
// profile, --emulator, --timeout, --json, --quiet.
func addAPIFlags(pf *pflag.FlagSet) {
	addString := func(name, usage string) {
		if pf.Lookup(name) == nil {
			pf.String(name, "", usage)
		}
	}
	addString("api-key", "Magic Hour API key (default: the profile's api_key, else $"+magichour.EnvAPIKey+")")
	addString("base-url", "API base URL (default: the profile's base_url, else $"+magichour.EnvBaseURL+", else https://api.magichour.ai; e.g. http://127.0.0.1:8787 for hourglass emulate)")
	addString("profile", "configuration profile to use (default $"+EnvProfile+"; see hourglass config)")
	addString("spec", "Magic Hour spec (file or URL) to build tools and checks from (default $"+EnvSpec+", else the catalog of hourglass catalog update, else the built-in one)")
	if pf.Lookup("no-validate") == nil {
		pf.Bool("no-validate", false, "skip the local checks against the catalog: Magic Hour has the last word")
	}
	if pf.Lookup("emulator") == nil {
		pf.Bool("emulator", false, "run against an in-process emulator (no key needed; results are placeholders)")
	}
	if pf.Lookup("timeout") == nil {
		pf.Duration("timeout", 0, "give up after this long (e.g. 10m); exit code 4")
	}
	addOutputFlags(pf)
}

// addOutputFlags adds --json and --quiet.
func addOutputFlags(pf *pflag.FlagSet) {
	if pf.Lookup("json") == nil {
		pf.Bool("json", false, "print machine-readable JSON on stdout (errors too)")
	}
	if pf.Lookup("quiet") == nil {
		pf.BoolP("quiet", "q", false, "no progress output on stderr")
	}
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

	// How the connection was given, for resume hints: the flags to repeat.
	profile     string // the profile that supplied a setting
	keyFlag     bool   // --api-key was given on the command line
	baseFlag    string // --base-url given on the command line
	baseFromEnv bool
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

// connect builds the API client from --api-key/--base-url, the profile,
// $MAGIC_HOUR_API_KEY/$MAGIC_HOUR_BASE_URL, or an in-process emulator with
// --emulator. Flags win; a profile chosen with --profile or
// $HOURGLASS_PROFILE wins over the environment, the default profile does
// not. A missing key is a usage error that suggests --emulator.
func (e *env) connect(ctx context.Context) error {
	key, _ := e.cmd.Flags().GetString("api-key")
	base, _ := e.cmd.Flags().GetString("base-url")
	useEmu, _ := e.cmd.Flags().GetBool("emulator")
	e.keyFlag = key != ""
	e.baseFlag = base
	prof, err := chooseProfile(e.cmd)
	if err != nil {
		return err
	}
	pick := func(flag, envName, profKey string) (string, bool, bool) {
		if flag != "" {
			return flag, false, false
		}
		pv := prof.values[profKey]
		if prof.explicit && pv != "" {
			return pv, true, false
		}
		if v := strings.TrimSpace(os.Getenv(envName)); v != "" {
			return v, false, true
		}
		return pv, pv != "", false
	}
	var fromProf bool
	key, fromProf, _ = pick(key, magichour.EnvAPIKey, "api_key")
	if fromProf {
		e.profile = prof.name
	}
	base, fromProf, e.baseFromEnv = pick(base, magichour.EnvBaseURL, "base_url")
	if fromProf {
		e.profile = prof.name
	}
	if prof.explicit {
		e.profile = prof.name
	}
	opts := []magichour.Option{magichour.WithUserAgent("hourglass-cli/" + version()), magichour.WithCatalog(catalogOf(e.cmd))}
	if nv, _ := e.cmd.Flags().GetBool("no-validate"); nv {
		opts = append(opts, magichour.WithoutValidation())
	}
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
		return usageErrorf("no API key: pass --api-key, set %s, or save one in a profile (hourglass config set api_key); or add --emulator to try it offline against a local emulator, no key needed", magichour.EnvAPIKey)
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
	if !e.emulated && base != "" {
		e.scale = emulatorSpeedAt(ctx, base)
	}
	return nil
}

// resumeFlags are the connection flags a pasted follow-up command needs to
// reach the same API: the profile, or --base-url, and --api-key when the
// key was a flag (never the key itself).
func (e *env) resumeFlags() string {
	var parts []string
	if e.profile != "" {
		parts = append(parts, "--profile "+shellQuote(e.profile))
	}
	if e.baseFlag != "" {
		parts = append(parts, "--base-url "+shellQuote(e.baseFlag))
	}
	if e.keyFlag {
		parts = append(parts, "--api-key …")
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}

// resumeNote explains the "--api-key …" placeholder of a hint.
func (e *env) resumeNote() string {
	if !e.keyFlag {
		return ""
	}
	return "\n(put your key in place of …, or save it once: hourglass config set api_key)"
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
