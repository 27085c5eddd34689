package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// EnvProfile names the profile to use when --profile is not given.
const EnvProfile = "HOURGLASS_PROFILE"

// configKeys are the settings a profile holds; secret ones are stored 0600
// and never printed.
var configKeys = []struct {
	name, help string
	secret     bool
}{
	{"api_key", "Magic Hour API key (used instead of $MAGIC_HOUR_API_KEY)", true},
	{"base_url", "API base URL, e.g. http://127.0.0.1:8787 for hourglass emulate", false},
	{"gateway", "URL of an hourglass gateway, for `hourglass listen` and `hourglass admin`", false},
	{"gateway_key", "tenant key of that gateway (for `hourglass listen`)", true},
	{"admin_key", "admin key of that gateway (for `hourglass admin` and `hourglass listen`)", true},
	{"webhook_secret", "webhook signing secret (for `webhook listen`, `webhook trigger`, `listen`)", true},
}

func configKey(name string) (secret bool, ok bool) {
	for _, k := range configKeys {
		if k.name == name {
			return k.secret, true
		}
	}
	return false, false
}

// config is the parsed config file.
type config struct {
	Default  string                       `toml:"default_profile,omitempty"`
	Profiles map[string]map[string]string `toml:"profiles"`

	path string
}

// configDir is os.UserConfigDir()/hourglass (XDG_CONFIG_HOME on Linux).
func configDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", usageErrorf("no user config directory: %v (set $XDG_CONFIG_HOME or $HOME)", err)
	}
	return filepath.Join(d, "hourglass"), nil
}

func configPath() (string, error) {
	d, err := configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "config.toml"), nil
}

// loadConfig reads the config file; a missing file is an empty config. A
// file others can read (it may hold keys) or with bad syntax is a usage
// error naming the file and the fix.
func loadConfig() (*config, error) {
	p, err := configPath()
	if err != nil {
		return nil, err
	}
	c := &config{path: p, Profiles: map[string]map[string]string{}}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, usageErrorf("config file %s: %v", p, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, usageErrorf("config file %s has permissions %04o, but it may hold API keys: run `chmod 600 %s`", p, perm, p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, usageErrorf("config file %s: %v", p, err)
	}
	md, err := toml.Decode(string(b), c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, usageErrorf("config file %s: line %d: %s (fix or delete the file)", p, pe.Position.Line, pe.Message)
		}
		return nil, usageErrorf("config file %s: %v (want [profiles.NAME] tables of key = \"value\")", p, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, usageErrorf("config file %s: unknown setting %q", p, und[0].String())
	}
	if c.Profiles == nil {
		c.Profiles = map[string]map[string]string{}
	}
	for name, prof := range c.Profiles {
		for k := range prof {
			if _, ok := configKey(k); !ok {
				return nil, usageErrorf("config file %s: profile %q: unknown key %q (keys: %s)", p, name, k, keyNames())
			}
		}
	}
	return c, nil
}

// save writes the config atomically with 0600 permissions (0700 folder).
func (c *config) save() error {
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(c.path), err)
	}
	var buf bytes.Buffer
	buf.WriteString("# hourglass configuration: `hourglass config set|get|list|use`. Holds keys: keep it 0600.\n")
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".config-*.toml")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), c.path)
}

// profileChoice is which profile a command uses and why.
type profileChoice struct {
	name     string
	explicit bool // --profile or $HOURGLASS_PROFILE: its values win over the environment
	values   map[string]string
}

// chooseProfile picks the profile: --profile, $HOURGLASS_PROFILE, the
// config's default_profile, else "default" when it exists. A named
// profile that does not exist is a usage error.
func chooseProfile(cmd *cobra.Command) (*profileChoice, error) {
	name, _ := cmd.Flags().GetString("profile")
	explicit := name != ""
	if name == "" {
		name = os.Getenv(EnvProfile)
		explicit = name != ""
	}
	c, err := loadConfig()
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = c.Default
	}
	if name == "" {
		if _, ok := c.Profiles["default"]; ok {
			name = "default"
		}
	}
	if name == "" {
		return &profileChoice{}, nil
	}
	vals, ok := c.Profiles[name]
	if !ok {
		return nil, usageErrorf("no profile %q in %s (create it: hourglass config set --profile %s api_key)", name, c.path, name)
	}
	return &profileChoice{name: name, explicit: explicit, values: vals}, nil
}

func keyNames() string {
	var n []string
	for _, k := range configKeys {
		n = append(n, k.name)
	}
	return strings.Join(n, ", ")
}

// normalizeKey accepts api-key as well as api_key.
func normalizeKey(k string) (string, error) {
	k = strings.ReplaceAll(strings.TrimSpace(k), "-", "_")
	if _, ok := configKey(k); !ok {
		msg := fmt.Sprintf("unknown key %q; keys: %s", k, keyNames())
		var names []string
		for _, x := range configKeys {
			names = append(names, x.name)
		}
		if s := closest(k, names); s != "" {
			msg += "; did you mean " + s + "?"
		}
		return "", usageErrorf("%s", msg)
	}
	return k, nil
}

func newConfigCmd() *cobra.Command {
	cfg := &cobra.Command{
		Use:   "config",
		Short: "Profiles: API keys, base URLs and gateways saved under your config directory",
		Long: "Saves settings in profiles, in " + displayConfigPath() + " (0600).\n" +
			"Commands use the profile named by --profile or $" + EnvProfile + ", else the one set with\n" +
			"`hourglass config use`, else \"default\". Flags win over a profile; an explicitly chosen\n" +
			"profile wins over $MAGIC_HOUR_API_KEY/$MAGIC_HOUR_BASE_URL. Keys: " + keyNames() + ".\n" +
			"Secret values are never printed; `config set KEY` without a value reads it from stdin.",
		Example: "  hourglass config set --profile local base_url http://127.0.0.1:8787\n" +
			"  echo mhk_test_emulator | hourglass config set --profile local api_key\n" +
			"  hourglass config use local\n" +
			"  hourglass image generate --prompt 'a cat' --image-count 1 --profile local",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cfg.PersistentFlags().String("profile", "", "profile to change or show (default $"+EnvProfile+", else the default profile, else \"default\")")
	profileFor := func(cmd *cobra.Command, c *config) string {
		if n, _ := cmd.Flags().GetString("profile"); n != "" {
			return n
		}
		if n := os.Getenv(EnvProfile); n != "" {
			return n
		}
		if c.Default != "" {
			return c.Default
		}
		return "default"
	}
	set := &cobra.Command{
		Use:   "set KEY [VALUE]",
		Short: "Set a profile's setting (a secret without VALUE is read from stdin)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := normalizeKey(args[0])
			if err != nil {
				return err
			}
			c, err := loadConfig()
			if err != nil {
				return err
			}
			secret, _ := configKey(key)
			var val string
			if len(args) == 2 {
				val = args[1]
			} else {
				val, err = readSecret(cmd, key)
				if err != nil {
					return err
				}
			}
			val = strings.TrimSpace(val)
			if val == "" {
				return usageErrorf("empty value for %s", key)
			}
			if key == "base_url" || key == "gateway" {
				if !isRemoteRef(val) {
					return usageErrorf("%s %q: want an http(s) URL", key, val)
				}
			}
			name := profileFor(cmd, c)
			if c.Profiles[name] == nil {
				c.Profiles[name] = map[string]string{}
			}
			c.Profiles[name][key] = val
			if err := c.save(); err != nil {
				return &exitError{code: ExitUsage, msg: "save " + c.path + ": " + err.Error()}
			}
			shown := val
			if secret {
				shown = "(hidden)"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "profile %s: %s = %s\n", name, key, shown)
			return nil
		},
	}
	get := &cobra.Command{
		Use:   "get KEY",
		Short: "Print a profile's setting (secrets: only whether it is set)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := normalizeKey(args[0])
			if err != nil {
				return err
			}
			c, err := loadConfig()
			if err != nil {
				return err
			}
			name := profileFor(cmd, c)
			v, ok := c.Profiles[name][key]
			if !ok {
				return &exitError{code: ExitJob, msg: fmt.Sprintf("%s is not set in profile %s", key, name)}
			}
			if secret, _ := configKey(key); secret {
				v = "(set, hidden)"
			}
			fmt.Fprintln(cmd.OutOrStdout(), v)
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List profiles and their settings (secrets hidden)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(c.Profiles) == 0 {
				fmt.Fprintf(out, "no profiles yet (%s); add one: hourglass config set --profile NAME KEY VALUE\n", c.path)
				return nil
			}
			var names []string
			for n := range c.Profiles {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				mark := ""
				if n == c.Default || (c.Default == "" && n == "default") {
					mark = " (default)"
				}
				fmt.Fprintf(out, "[%s]%s\n", n, mark)
				for _, k := range configKeys {
					v, ok := c.Profiles[n][k.name]
					if !ok {
						continue
					}
					if k.secret {
						v = "(hidden)"
					}
					fmt.Fprintf(out, "  %-14s %s\n", k.name, v)
				}
			}
			return nil
		},
	}
	use := &cobra.Command{
		Use:   "use PROFILE",
		Short: "Make PROFILE the default for every command",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadConfig()
			if err != nil {
				return err
			}
			if _, ok := c.Profiles[args[0]]; !ok {
				return usageErrorf("no profile %q in %s (create it with hourglass config set --profile %s KEY VALUE)", args[0], c.path, args[0])
			}
			c.Default = args[0]
			if err := c.save(); err != nil {
				return &exitError{code: ExitUsage, msg: "save " + c.path + ": " + err.Error()}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "default profile: %s\n", args[0])
			return nil
		},
	}
	cfg.AddCommand(set, get, list, use)
	return cfg
}

// readSecret reads a value from stdin: without echo on a terminal, else
// the first line.
func readSecret(cmd *cobra.Command, key string) (string, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s (not echoed): ", key)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", usageErrorf("read %s: %v", key, err)
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", usageErrorf("read %s from stdin: %v", key, err)
	}
	return line, nil
}

func displayConfigPath() string {
	if p, err := configPath(); err == nil {
		return p
	}
	return "$XDG_CONFIG_HOME/hourglass/config.toml"
}
