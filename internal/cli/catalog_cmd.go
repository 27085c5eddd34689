package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// EnvSpec names a spec (file or URL) every command uses, like --spec.
const EnvSpec = "HOURGLASS_SPEC"

// DefaultSpecURL is where `hourglass catalog update` fetches Magic Hour's
// published spec when --from is not given.
const DefaultSpecURL = "https://docs.magichour.ai/api-reference/openapi.json"

// maxSpecBytes bounds a spec document read from a file or URL.
const maxSpecBytes = 32 << 20

type catalogKey struct{}

// catalogOf is the catalog the command runs with: the one Execute
// resolved (--spec, $HOURGLASS_SPEC, the cached one from catalog update),
// else the embedded default.
func catalogOf(cmd *cobra.Command) *catalog.Catalog {
	if ctx := cmd.Context(); ctx != nil {
		if c, ok := ctx.Value(catalogKey{}).(*catalog.Catalog); ok {
			return c
		}
	}
	return catalog.Default()
}

// specArg finds --spec V or --spec=V among the arguments (before "--"),
// so that the tool commands can be built from that catalog.
func specArg(args []string) string {
	for i, a := range args {
		switch {
		case a == "--":
			return ""
		case a == "--spec" && i+1 < len(args):
			return args[i+1]
		case strings.HasPrefix(a, "--spec="):
			return strings.TrimPrefix(a, "--spec=")
		}
	}
	return ""
}

// readSpec reads a spec document from a file or an http(s) URL.
func readSpec(ctx context.Context, ref string) ([]byte, error) {
	if isRemoteRef(ref) {
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "hourglass-cli/"+version())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", ref, resp.Status)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxSpecBytes+1))
		if err == nil && len(b) > maxSpecBytes {
			err = fmt.Errorf("larger than %d MiB", maxSpecBytes>>20)
		}
		return b, err
	}
	f, err := os.Open(ref)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSpecBytes+1))
	if err == nil && len(b) > maxSpecBytes {
		err = fmt.Errorf("larger than %d MiB", maxSpecBytes>>20)
	}
	return b, err
}

func cacheDir() (string, error) {
	d, err := configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "catalog"), nil
}

// resolveCatalog picks the catalog of this run: --spec (or $HOURGLASS_SPEC),
// else the one `catalog update` cached, else the embedded one. A --spec
// that does not load is a usage error naming what is wrong; a cached one
// that does not is reported and the embedded one used.
func resolveCatalog(ctx context.Context, args []string, warn io.Writer) (*catalog.Catalog, error) {
	ref := specArg(args)
	from := "--spec"
	if ref == "" {
		ref, from = os.Getenv(EnvSpec), "$"+EnvSpec
	}
	if ref != "" {
		b, err := readSpec(ctx, ref)
		if err != nil {
			return nil, usageErrorf("%s %s: %v", from, ref, err)
		}
		c, err := catalog.Load(b, catalog.WithSource(ref))
		if err != nil {
			return nil, usageErrorf("%s %s: %s", from, ref, strings.TrimPrefix(err.Error(), "catalog: "))
		}
		return c, nil
	}
	dir, err := cacheDir()
	if err != nil {
		return catalog.Default(), nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "catalog.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return catalog.Default(), nil
	}
	if err == nil {
		var c *catalog.Catalog
		if c, err = catalog.Decode(b); err == nil {
			return c, nil
		}
	}
	fmt.Fprintf(warn, "warning: the cached catalog in %s is unusable (%v); using the built-in one (run hourglass catalog update)\n", dir, err)
	return catalog.Default(), nil
}

func newCatalogCmd() *cobra.Command {
	cc := &cobra.Command{
		Use:   "catalog",
		Short: "The Magic Hour spec in use: show it, or update it from the published spec without a new release",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cc.PersistentFlags().String("spec", "", "use this spec (file or URL) instead of the cached or built-in catalog (default $"+EnvSpec+")")
	addOutputFlags(cc.PersistentFlags())
	var from string
	update := &cobra.Command{
		Use:   "update",
		Short: "Fetch a spec, check it, and cache it as the catalog every later command uses",
		Long: "Fetches Magic Hour's OpenAPI spec (--from a URL or file; default " + DefaultSpecURL + "),\n" +
			"validates it with kin-openapi and checks that it has the operations hourglass needs, then\n" +
			"caches it under " + displayCacheDir() + ". Later commands build their tools, flags and\n" +
			"checks from it. A spec that is refused changes nothing: the previous catalog stays in use.",
		Example: "  hourglass catalog update\n  hourglass catalog update --from ./openapi.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e := newEnv(cmd)
			ref := from
			if ref == "" {
				ref = DefaultSpecURL
			}
			b, err := readSpec(cmd.Context(), ref)
			if err != nil {
				return &exitError{code: ExitAPI, msg: fmt.Sprintf("read the spec %s: %v (the catalog in use is unchanged)", ref, err)}
			}
			c, err := catalog.Load(b, catalog.WithSource(ref))
			if err != nil {
				return usageErrorf("%s (the catalog in use is unchanged)", strings.TrimPrefix(err.Error(), "catalog: "))
			}
			enc, err := c.Encode()
			if err != nil {
				return err
			}
			dir, err := cacheDir()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return usageErrorf("create %s: %v", dir, err)
			}
			// The spec for provenance, the distilled catalog for fast
			// starts; each written whole, the catalog last.
			if err := writeFileAtomic(filepath.Join(dir, "openapi.json"), b); err != nil {
				return usageErrorf("save the spec: %v", err)
			}
			if err := writeFileAtomic(filepath.Join(dir, "catalog.json"), enc); err != nil {
				return usageErrorf("save the catalog: %v", err)
			}
			old := catalog.Default()
			if prev := catalogOf(cmd); prev != nil {
				old = prev
			}
			added := newTools(old, c)
			if e.json {
				return json.NewEncoder(e.stdout).Encode(map[string]any{"source": c.Source, "date": c.Date, "version": c.Version, "sha256": c.SHA256,
					"operations": len(c.Ops), "new_tools": added, "cached_in": dir})
			}
			fmt.Fprintf(e.stdout, "catalog updated from %s: version %s, %d operations, %d tools (sha256 %s…)\n", c.Source, c.Version, len(c.Ops), len(c.Creates()), c.SHA256[:12])
			if len(added) > 0 {
				fmt.Fprintf(e.stdout, "new tools: %s\n", strings.Join(added, ", "))
			}
			fmt.Fprintf(e.stdout, "cached in %s; used by every command from now on (hourglass catalog show)\n", dir)
			return nil
		},
	}
	update.Flags().StringVar(&from, "from", "", "URL or file of the spec (default "+DefaultSpecURL+")")
	show := &cobra.Command{
		Use:   "show",
		Short: "Print which catalog is in use, its date and its operations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e := newEnv(cmd)
			c := catalogOf(cmd)
			if e.json {
				type op struct {
					Name, Method, Path, Kind string
					P50                      string `json:"p50,omitempty"`
				}
				var ops []op
				for _, o := range c.Ops {
					p := ""
					if o.P50 > 0 {
						p = o.P50.String()
					}
					ops = append(ops, op{o.Name, o.Method, o.Path, string(o.Kind), p})
				}
				return json.NewEncoder(e.stdout).Encode(map[string]any{"source": c.Source, "date": c.Date, "version": c.Version, "sha256": c.SHA256, "operations": ops})
			}
			fmt.Fprintf(e.stdout, "catalog: %s\nspec version %s, taken %s, sha256 %s\n\n", c.Source, c.Version, c.Date.Format("2006-01-02"), c.SHA256)
			ops := append([]*catalog.Operation(nil), c.Ops...)
			sort.SliceStable(ops, func(i, j int) bool { return ops[i].Path < ops[j].Path })
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "OPERATION\tROUTE\tKIND\tMEDIAN\tCOMMAND")
			for _, o := range ops {
				med, command := "", ""
				if o.Role == catalog.RoleCreate && (o.Kind == catalog.KindImage || o.Kind == catalog.KindVideo || o.Kind == catalog.KindAudio) {
					med = humanDuration(o.P50)
					command = "hourglass " + string(o.Kind) + " " + commandName(o)
				}
				fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\n", o.Name, o.Method, o.Path, o.Kind, med, command)
			}
			return tw.Flush()
		},
	}
	cc.AddCommand(update, show)
	return cc
}

// newTools lists the tools of c that old lacks.
func newTools(old, c *catalog.Catalog) []string {
	var out []string
	for _, op := range c.Creates() {
		if old.Lookup(op.Name) == nil {
			out = append(out, op.Name)
		}
	}
	sort.Strings(out)
	return out
}

func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
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
	return os.Rename(tmp.Name(), path)
}

func displayCacheDir() string {
	if d, err := cacheDir(); err == nil {
		return d
	}
	return "the user config directory's hourglass/catalog"
}
