package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hourglasshq/hourglass/magichour"
)

func newAccountCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "account",
		Short: "Show the account behind the API key: tier, credits, subscription",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, ctx, done, err := start(cmd)
			if err != nil {
				return err
			}
			defer done()
			a, err := e.client.Account.Get(ctx)
			if err != nil {
				return apiError(ctx, err)
			}
			if e.json {
				return json.NewEncoder(e.stdout).Encode(a)
			}
			fmt.Fprintf(e.stdout, "account %s (%s)\ntier:    %s\ncredits: %d\n", a.ID, a.Email, a.Tier, a.Credits)
			if s := a.Subscription; s != nil {
				fmt.Fprintf(e.stdout, "plan:    %s, %s, %d %s per %s", s.Name, s.Status, s.Price.Amount, strings.ToUpper(s.Price.Currency), s.BillingInterval)
				if s.CurrentPeriodEnd != "" {
					fmt.Fprintf(e.stdout, ", period ends %s", s.CurrentPeriodEnd)
				}
				if s.CancelAtPeriodEnd {
					fmt.Fprint(e.stdout, " (cancels then)")
				}
				fmt.Fprintln(e.stdout)
			} else {
				fmt.Fprintln(e.stdout, "plan:    none")
			}
			return nil
		},
	}
}

func newSavedItemsCmd() *cobra.Command {
	g := &cobra.Command{
		Use:   "saved-items",
		Short: "Saved characters, voices and references: their saved-items/… paths work in any file flag",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var typ string
	var limit int
	list := &cobra.Command{
		Use:     "list",
		Short:   "List saved items (every page), with each asset's saved-items/… path",
		Example: "  hourglass saved-items list --type voice\n  hourglass video lip-sync --audio saved-items/… --video clip.mp4 --start 0 --end 5",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if typ != "" && !contains([]string{"character", "reference", "voice", "moodboard", "brand_kit"}, typ) {
				return usageErrorf("--type %q: want character, reference, voice, moodboard or brand_kit", typ)
			}
			e, ctx, done, err := start(cmd)
			if err != nil {
				return err
			}
			defer done()
			var items []magichour.SavedItem
			for it, err := range e.client.SavedItems.List(ctx, magichour.SavedItemsParams{Type: typ, Limit: limit}) {
				if err != nil {
					return apiError(ctx, err)
				}
				items = append(items, it)
			}
			if e.json {
				if items == nil {
					items = []magichour.SavedItem{}
				}
				return json.NewEncoder(e.stdout).Encode(map[string]any{"items": items})
			}
			if len(items) == 0 {
				fmt.Fprintln(e.stdout, "no saved items")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTYPE\tNAME\tMEDIA\tFILE PATH")
			for _, it := range items {
				if len(it.Assets) == 0 {
					fmt.Fprintf(tw, "%s\t%s\t%s\t\t\n", it.ID, it.Type, it.Name)
				}
				for i, a := range it.Assets {
					id, t, n := it.ID, string(it.Type), it.Name
					if i > 0 {
						id, t, n = "", "", ""
					}
					fp := a.FilePath
					if a.IsPrimary && len(it.Assets) > 1 {
						fp += " (primary)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, t, n, a.MediaKind, fp)
				}
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&typ, "type", "", "only this type: character, reference, voice, moodboard or brand_kit")
	list.Flags().IntVar(&limit, "page-size", 100, "items per request (1 to 100)")
	g.AddCommand(list)
	return g
}
