package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// newAdminCmd is `hourglass admin`: tenants and jobs of a gateway, with
// its admin key (the gateway's /api/admin routes and /api/jobs).
func newAdminCmd() *cobra.Command {
	adm := &cobra.Command{
		Use:   "admin",
		Short: "Manage a gateway: tenants, keys, budgets and jobs (admin key)",
		Long: "Talks to an hourglass gateway (hourglass serve) with its admin key: --gateway and\n" +
			"--admin-key, else the profile's gateway and admin_key, else $" + EnvGateway + " and $" + EnvAdminKey + ".\n" +
			"Keys the gateway creates (a new tenant's key, a rotated key) are printed once: store them.",
		Example: "  hourglass config set --profile prod gateway https://hourglass.example.com\n" +
			"  hourglass config set --profile prod admin_key          # reads it from stdin\n" +
			"  hourglass admin tenants create acme --budget 10000 --profile prod\n" +
			"  hourglass admin jobs list --status error --profile prod",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := adm.PersistentFlags()
	pf.String("gateway", "", "gateway base URL (default: the profile's gateway, else $"+EnvGateway+")")
	pf.String("admin-key", "", "the gateway's admin key (default: the profile's admin_key, else $"+EnvAdminKey+")")
	pf.String("profile", "", "configuration profile (default $"+EnvProfile+")")
	pf.Duration("timeout", 30*time.Second, "give up after this long")
	addOutputFlags(pf)
	adm.AddCommand(newAdminTenantsCmd(), newAdminJobsCmd())
	return adm
}

// adminClient calls one gateway with the admin key.
type adminClient struct {
	e    *env
	base string
	key  string
	hc   *http.Client
}

func newAdminClient(cmd *cobra.Command) (*adminClient, context.Context, context.CancelFunc, error) {
	u, _ := cmd.Flags().GetString("gateway")
	k, _ := cmd.Flags().GetString("admin-key")
	base, key, _, err := gatewayConn(cmd, u, k, []string{"admin_key"}, EnvAdminKey)
	if err != nil {
		return nil, nil, nil, err
	}
	e := newEnv(cmd)
	ctx, cancel := e.context()
	return &adminClient{e: e, base: base, key: key, hc: &http.Client{}}, ctx, cancel, nil
}

// call sends a JSON request and decodes the answer into out. A refusal is
// exit 3 with the gateway's own message.
func (a *adminClient) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return usageErrorf("%v", err)
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "hourglass-cli/"+version())
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{code: ExitInterrup, msg: "stopped: " + oneLine(err)}
		}
		return &exitError{code: ExitAPI, msg: fmt.Sprintf("cannot reach the gateway at %s: %s", a.base, oneLine(err))}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode/100 != 2 {
		var v struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &v) == nil && v.Error.Message != "" {
			msg = v.Error.Message
			if v.Error.Code != "" {
				msg += " (" + v.Error.Code + ")"
			}
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			msg += ": pass the gateway's admin key (--admin-key, the profile's admin_key or $" + EnvAdminKey + ")"
		case http.StatusNotFound:
			if strings.Contains(msg, "no such route") {
				msg += ": this gateway does not have " + method + " " + path + " (an older version?)"
			}
		}
		return &exitError{code: ExitAPI, msg: fmt.Sprintf("%s %s: %d %s", method, path, resp.StatusCode, msg)}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return &exitError{code: ExitAPI, msg: fmt.Sprintf("%s %s: not JSON: %v", method, path, err)}
		}
	}
	return nil
}

// print writes v as one JSON object with --json, else calls human.
func (a *adminClient) print(v any, human func(w io.Writer)) error {
	if a.e.json {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.e.stdout, "%s\n", b)
		return err
	}
	human(a.e.stdout)
	return nil
}

type tenantRow struct {
	ID                       string    `json:"id"`
	Name                     string    `json:"name"`
	CreditBudget             *int64    `json:"credit_budget"`
	CreditsUsed              int64     `json:"credits_used"`
	MaxInFlight              *int      `json:"max_in_flight"`
	DeleteUpstreamAfterStore bool      `json:"delete_upstream_after_store"`
	Disabled                 bool      `json:"disabled"`
	CreatedAt                time.Time `json:"created_at"`
}

func orNone[T int | int64](p *T) string {
	if p == nil {
		return "none"
	}
	return strconv.FormatInt(int64(*p), 10)
}

func printTenants(w io.Writer, ts []tenantRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tBUDGET\tUSED\tMAX IN FLIGHT\tSTATE\tCREATED")
	for _, t := range ts {
		state := "active"
		if t.Disabled {
			state = "disabled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", t.ID, t.Name, orNone(t.CreditBudget), t.CreditsUsed, orNone(t.MaxInFlight), state, t.CreatedAt.Local().Format("2006-01-02 15:04"))
	}
	_ = tw.Flush()
}

// limitFlags are the tenant limits create and update set.
type limitFlags struct {
	budget, maxInFlight string
	deleteUpstream      bool
}

func (l *limitFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&l.budget, "budget", "", "credit budget (an integer, or none for no limit)")
	cmd.Flags().StringVar(&l.maxInFlight, "max-in-flight", "", "jobs at Magic Hour at once (an integer, or none)")
	cmd.Flags().BoolVar(&l.deleteUpstream, "delete-upstream-after-store", false, "delete each job at Magic Hour once its outputs are stored")
}

// body returns the JSON members of the limits given on the command line.
func (l *limitFlags) body(cmd *cobra.Command) (map[string]any, error) {
	out := map[string]any{}
	num := func(flag, key, s string, minV int64) error {
		if !cmd.Flags().Changed(flag) {
			return nil
		}
		if s == "none" {
			out[key] = nil
			return nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < minV {
			return usageErrorf("--%s %q: want an integer >= %d, or none", flag, s, minV)
		}
		out[key] = n
		return nil
	}
	if err := num("budget", "credit_budget", l.budget, 0); err != nil {
		return nil, err
	}
	if err := num("max-in-flight", "max_in_flight", l.maxInFlight, 1); err != nil {
		return nil, err
	}
	if cmd.Flags().Changed("delete-upstream-after-store") {
		out["delete_upstream_after_store"] = l.deleteUpstream
	}
	return out, nil
}

func newAdminTenantsCmd() *cobra.Command {
	tc := &cobra.Command{Use: "tenants", Short: "List, create, update, rotate keys of and disable tenants", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	list := &cobra.Command{
		Use: "list", Short: "List the tenants", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, ctx, cancel, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			var v struct {
				Tenants []tenantRow `json:"tenants"`
			}
			if err := a.call(ctx, http.MethodGet, "/api/admin/tenants", nil, &v); err != nil {
				return err
			}
			sort.Slice(v.Tenants, func(i, j int) bool { return v.Tenants[i].CreatedAt.Before(v.Tenants[j].CreatedAt) })
			return a.print(v, func(w io.Writer) { printTenants(w, v.Tenants) })
		},
	}
	var cl limitFlags
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a tenant; prints its API key (once) and callback secret", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := cl.body(cmd)
			if err != nil {
				return err
			}
			body["name"] = args[0]
			a, ctx, cancel, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			var v struct {
				tenantRow
				APIKey         string `json:"api_key"`
				CallbackSecret string `json:"callback_secret"`
			}
			if err := a.call(ctx, http.MethodPost, "/api/admin/tenants", body, &v); err != nil {
				return err
			}
			return a.print(v, func(w io.Writer) {
				printTenants(w, []tenantRow{v.tenantRow})
				fmt.Fprintf(w, "api key:         %s   (shown once: store it now)\n", v.APIKey)
				fmt.Fprintf(w, "callback secret: %s\n", v.CallbackSecret)
			})
		},
	}
	cl.add(create)
	var ul limitFlags
	update := &cobra.Command{
		Use: "update ID", Short: "Change a tenant's budget, in-flight limit or upstream deletion", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := ul.body(cmd)
			if err != nil {
				return err
			}
			if len(body) == 0 {
				return usageErrorf("nothing to change: give --budget, --max-in-flight or --delete-upstream-after-store")
			}
			a, ctx, cancel, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			var v tenantRow
			if err := a.call(ctx, http.MethodPatch, "/api/admin/tenants/"+url.PathEscape(args[0]), body, &v); err != nil {
				return err
			}
			return a.print(v, func(w io.Writer) { printTenants(w, []tenantRow{v}) })
		},
	}
	ul.add(update)
	var overlap time.Duration
	rotate := &cobra.Command{
		Use: "rotate-key ID", Short: "Give a tenant a new API key; the old one works for --overlap more", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if overlap < 0 {
				return usageErrorf("--overlap: want 0 or more, got %s", overlap)
			}
			a, ctx, cancel, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			var v struct {
				APIKey     string     `json:"api_key"`
				ValidUntil *time.Time `json:"previous_key_valid_until"`
			}
			if err := a.call(ctx, http.MethodPost, "/api/admin/tenants/"+url.PathEscape(args[0])+"/rotate-key", map[string]int64{"overlap_seconds": int64(overlap / time.Second)}, &v); err != nil {
				return err
			}
			return a.print(v, func(w io.Writer) {
				fmt.Fprintf(w, "new api key: %s   (shown once: store it now)\n", v.APIKey)
				if v.ValidUntil != nil && !v.ValidUntil.IsZero() {
					fmt.Fprintf(w, "the previous key works until %s\n", v.ValidUntil.Local().Format(time.RFC3339))
				} else {
					fmt.Fprintln(w, "the previous key no longer works")
				}
			})
		},
	}
	rotate.Flags().DurationVar(&overlap, "overlap", time.Hour, "how long the previous key keeps working (0: not at all)")
	state := func(use, short, action string) *cobra.Command {
		return &cobra.Command{
			Use: use + " ID", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				a, ctx, cancel, err := newAdminClient(cmd)
				if err != nil {
					return err
				}
				defer cancel()
				var v tenantRow
				if err := a.call(ctx, http.MethodPost, "/api/admin/tenants/"+url.PathEscape(args[0])+"/"+action, nil, &v); err != nil {
					return err
				}
				return a.print(v, func(w io.Writer) { printTenants(w, []tenantRow{v}) })
			},
		}
	}
	tc.AddCommand(list, create, update, rotate,
		state("disable", "Disable a tenant: its keys are refused (403), its jobs still finish", "disable"),
		state("enable", "Enable a disabled tenant again", "enable"))
	return tc
}

type jobRow struct {
	ID         string    `json:"id"`
	Tool       string    `json:"tool"`
	Status     string    `json:"status"`
	UpstreamID string    `json:"upstream_id"`
	Credits    int64     `json:"credits"`
	Error      *jobError `json:"error"`
	CreatedAt  time.Time `json:"created_at"`
}

func printJobs(w io.Writer, js []jobRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTOOL\tSTATUS\tCREDITS\tUPSTREAM ID\tCREATED\tERROR")
	for _, j := range js {
		errs := ""
		if j.Error != nil {
			errs = j.Error.Code
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", j.ID, j.Tool, j.Status, j.Credits, j.UpstreamID, j.CreatedAt.Local().Format("2006-01-02 15:04:05"), errs)
	}
	_ = tw.Flush()
}

func newAdminJobsCmd() *cobra.Command {
	jc := &cobra.Command{Use: "jobs", Short: "List, show and delete jobs of every tenant", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	var status, tool, cursor, after, before string
	var limit int
	var meta []string
	list := &cobra.Command{
		Use: "list", Short: "List jobs, newest first (filters: --status, --tool, --metadata, --created-after/-before)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"status": status, "tool": tool, "cursor": cursor, "created_after": after, "created_before": before} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			for _, m := range meta {
				k, v, ok := strings.Cut(m, "=")
				if !ok || k == "" {
					return usageErrorf("--metadata %q: want KEY=VALUE", m)
				}
				q.Set("metadata."+k, v)
			}
			a, ctx, cancel, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			var v struct {
				Jobs       []jobRow `json:"jobs"`
				NextCursor string   `json:"next_cursor"`
			}
			path := "/api/jobs"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			if err := a.call(ctx, http.MethodGet, path, nil, &v); err != nil {
				return err
			}
			var raw json.RawMessage
			if a.e.json {
				_ = a.call(ctx, http.MethodGet, path, nil, &raw) // the gateway's own object, every field
				return a.print(raw, nil)
			}
			return a.print(v, func(w io.Writer) {
				printJobs(w, v.Jobs)
				if v.NextCursor != "" {
					fmt.Fprintf(w, "more: --cursor %s\n", v.NextCursor)
				}
			})
		},
	}
	list.Flags().StringVar(&status, "status", "", "only these statuses, comma-separated (pending,creating,running,stored,error,canceled,...)")
	list.Flags().StringVar(&tool, "tool", "", "only this tool")
	list.Flags().StringVar(&cursor, "cursor", "", "continue after the previous page")
	list.Flags().StringVar(&after, "created-after", "", "only jobs created after this time (RFC 3339)")
	list.Flags().StringVar(&before, "created-before", "", "only jobs created before this time (RFC 3339)")
	list.Flags().IntVar(&limit, "limit", 50, "jobs per page")
	list.Flags().StringArrayVar(&meta, "metadata", nil, "only jobs with this metadata, KEY=VALUE (repeatable)")
	get := &cobra.Command{
		Use: "get ID", Short: "Show one job as the gateway returns it (JSON)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, ctx, cancel, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			var raw json.RawMessage
			if err := a.call(ctx, http.MethodGet, "/api/jobs/"+url.PathEscape(args[0]), nil, &raw); err != nil {
				return err
			}
			if a.e.json {
				return a.print(raw, nil)
			}
			var pretty bytes.Buffer
			_ = json.Indent(&pretty, raw, "", "  ")
			fmt.Fprintln(a.e.stdout, pretty.String())
			return nil
		},
	}
	var upstream bool
	del := &cobra.Command{
		Use: "delete ID", Short: "Stop tracking a job (cancels it if unfinished) and delete its stored outputs (--upstream: at Magic Hour too)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, ctx, cancel, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			path := "/api/jobs/" + url.PathEscape(args[0])
			if upstream {
				path += "?upstream=true"
			}
			var raw json.RawMessage
			if err := a.call(ctx, http.MethodDelete, path, nil, &raw); err != nil {
				return err
			}
			if a.e.json {
				if len(raw) == 0 {
					raw = json.RawMessage(`{"id":` + strconv.Quote(args[0]) + `,"deleted":true}`)
				}
				return a.print(raw, nil)
			}
			fmt.Fprintf(a.e.stdout, "job %s: tracking stopped, stored outputs deleted\n", args[0])
			return nil
		},
	}
	del.Flags().BoolVar(&upstream, "upstream", false, "delete the project at Magic Hour too (permanent)")
	jc.AddCommand(list, get, del)
	return jc
}
