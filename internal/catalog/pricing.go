package catalog

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Price is a price the spec states in prose. Field and Value say which
// request value it applies to ("model" = "gpt-image-2"); an empty Field is
// the tool's own price. Per is the unit: "image", "item", "frame" or
// "character".
type Price struct {
	Field   string  `json:"field,omitempty"`
	Value   string  `json:"value,omitempty"`
	Credits float64 `json:"credits"`
	Per     string  `json:"per"`
	// Source quotes where the spec says it.
	Source string `json:"source"`
}

// TierRule is a restriction the spec states: Field set to one of Values
// needs one of Tiers.
type TierRule struct {
	Field  string   `json:"field"`
	Values []string `json:"values"`
	Tiers  []string `json:"tiers"`
	Source string   `json:"source"`
}

// Tiers are the account tiers of GET /v1/account, cheapest first.
var Tiers = []string{"free", "creator", "pro", "business"}

var paidTiers = []string{"creator", "pro", "business"}

var (
	// "- `gpt-image-2` - from 50 credits/image" followed by sub-bullets.
	modelPrice = regexp.MustCompile("^[-*] `([^`]+)` - from ([0-9.]+) credits?/(\\w+)")
	tierBullet = regexp.MustCompile(`^\s*[-*] Available for tiers: (.+)$`)
	// "* `pro` - ... Costs 2 credits per frame of video."
	valueFramePrice = regexp.MustCompile("^[-*] `([^`]+)` -.*Costs ([0-9.]+) credits? per frame")
	// "Each photo costs 25 credits." / "Each character costs 0.1 credits."
	eachCosts = regexp.MustCompile(`Each (\w+) costs ([0-9.]+) (?:credits?|frames?)\b`)
	sentence  = regexp.MustCompile(`[^.\n]+(?:\.\d[^.\n]*)*`)
	paidPlan  = regexp.MustCompile(`(?i)requires? a paid plan`)
	onlyOn    = regexp.MustCompile(`(?i)only available (?:for users )?on ((?:[A-Z][a-z]+(?:, | and | or |, and |, or )?)+) tiers?`)
	timesX    = regexp.MustCompile(`\b(\d+)x\b`)
)

// pricing extracts the prices and tier rules stated in op's descriptions.
func pricing(op *Operation) ([]Price, []TierRule) {
	var prices []Price
	var rules []TierRule
	if m := eachCosts.FindStringSubmatch(op.Description); m != nil {
		c, _ := strconv.ParseFloat(m[2], 64)
		per := "item"
		if m[1] == "character" {
			per = "character"
		}
		prices = append(prices, Price{Credits: c, Per: per, Source: fmt.Sprintf("spec: %s %s description (%q)", op.Method, op.Path, m[0])})
	}
	if op.Request == nil {
		return prices, rules
	}
	op.Request.walk("", func(field string, s *Schema) {
		if s.Description == "" {
			return
		}
		src := fmt.Sprintf("spec: %s %s, %s description", op.Method, op.Path, field)
		lines := strings.Split(s.Description, "\n")
		for i, l := range lines {
			l = strings.TrimSpace(l)
			if m := modelPrice.FindStringSubmatch(l); m != nil {
				c, _ := strconv.ParseFloat(m[2], 64)
				prices = append(prices, Price{Field: field, Value: m[1], Credits: c, Per: m[3], Source: src})
				for _, sub := range lines[i+1:] {
					if modelPrice.MatchString(strings.TrimSpace(sub)) {
						break
					}
					if t := tierBullet.FindStringSubmatch(sub); t != nil {
						tiers := splitList(t[1])
						if len(tiers) < len(Tiers) {
							rules = append(rules, TierRule{Field: field, Values: []string{m[1]}, Tiers: tiers, Source: src})
						}
						break
					}
				}
			}
			if m := valueFramePrice.FindStringSubmatch(l); m != nil {
				c, _ := strconv.ParseFloat(m[2], 64)
				prices = append(prices, Price{Field: field, Value: m[1], Credits: c, Per: "frame", Source: src})
			}
		}
		for _, sn := range sentence.FindAllString(s.Description, -1) {
			var tiers []string
			switch {
			case paidPlan.MatchString(sn):
				tiers = paidTiers
			case onlyOn.MatchString(sn):
				tiers = splitList(onlyOn.FindStringSubmatch(sn)[1])
			default:
				continue
			}
			vals := mentioned(sn, s)
			if len(vals) > 0 && len(tiers) > 0 {
				rules = append(rules, TierRule{Field: field, Values: vals, Tiers: tiers, Source: fmt.Sprintf("%s (%q)", src, strings.TrimSpace(sn))})
			}
		}
	})
	return prices, rules
}

// mentioned returns the values of s named in a sentence: enum values (in
// backticks or as words), or "<n>x" factors of a number field.
func mentioned(sn string, s *Schema) []string {
	var out []string
	if len(s.Enum) == 0 {
		for _, m := range timesX.FindAllStringSubmatch(sn, -1) {
			out = append(out, m[1])
		}
		return out
	}
	for _, v := range s.Enum {
		if v == "" {
			continue
		}
		if strings.Contains(sn, "`"+v+"`") || regexp.MustCompile(`(^|[\s(])`+regexp.QuoteMeta(v)+`($|[\s,.)])`).MatchString(sn) {
			out = append(out, v)
		}
	}
	return out
}

func splitList(s string) []string {
	s = strings.NewReplacer(", and ", ",", ", or ", ",", " and ", ",", " or ", ",").Replace(s)
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		if slices.Contains(Tiers, p) {
			out = append(out, p)
		}
	}
	return out
}

// walk calls fn for s and every schema below it, with its dotted path
// ("style.prompt", "assets.face_mappings[].new_face").
func (s *Schema) walk(at string, fn func(field string, s *Schema)) {
	if s == nil {
		return
	}
	if at != "" {
		fn(at, s)
	}
	for _, p := range s.Properties {
		p.Schema.walk(join(at, p.Name), fn)
	}
	if s.Items != nil {
		s.Items.walk(at+"[]", fn)
	}
}

// Estimate is what a create is expected to cost and how that was worked out.
type Estimate struct {
	Credits int64
	// Source says which price was used: a quote of the spec, or the
	// hourglass model it fell back on.
	Source string
}

// Defaults of the credit model where the request leaves them out.
const (
	defaultVideoSeconds = 5
	defaultVideoFPS     = 30
	defaultImagePrice   = 5
	maxImageCount       = 16
)

// EstimateCredits returns the credits a create of op with body is expected
// to cost, before it is sent: what the emulator charges and the gateway
// reserves against a budget. Prices, in order of preference:
//
//   - a price the spec states for a request value (ai-image-generator and
//     ai-image-editor "model": "from N credits/image"; lip-sync
//     style.generation_mode "Costs N credits per frame"), times image_count
//     or frames;
//   - the tool's own price from its description ("Each photo costs 25
//     credits", "Each character costs 0.1 credits" of style.prompt, rounded
//     up);
//   - video without a stated price: one credit per frame,
//     ceil(end_seconds - start_seconds) × round(fps) (end_seconds defaults
//     to start_seconds + 5, fps to 30, lowered by max_fps_limit), as the
//     spec's "credits are only charged for the frames that actually render";
//   - else the spec's example credits_charged (images: 5 when none) ×
//     image_count.
//
// Magic Hour's real prices vary by plan and model ("from N"): the estimate
// is a budget guard, not an invoice.
func (op *Operation) EstimateCredits(body map[string]any) Estimate {
	price := func(field string) *Price {
		v, ok := Get(body, field)
		if !ok {
			return nil
		}
		sv := fmt.Sprint(v)
		for i := range op.Prices {
			if p := &op.Prices[i]; p.Field == field && p.Value == sv {
				return p
			}
		}
		return nil
	}
	var own *Price
	for i := range op.Prices {
		if op.Prices[i].Field == "" {
			own = &op.Prices[i]
		}
	}
	switch op.Kind {
	case KindVideo:
		start, _ := Number(body, "start_seconds")
		end, ok := Number(body, "end_seconds")
		if !ok {
			end = start + defaultVideoSeconds
		}
		fps := float64(defaultVideoFPS)
		if f, ok := Number(body, "fps"); ok && f > 0 {
			fps = f
		}
		if f, ok := Number(body, "max_fps_limit"); ok && f > 0 && f < fps {
			fps = f
		}
		frames := math.Ceil(math.Max(end-start, 0.1)) * math.Round(math.Max(fps, 1))
		for _, f := range op.priceFields("frame") {
			if p := price(f); p != nil {
				return Estimate{max(1, satCredits(math.Ceil(frames*p.Credits))), p.Source + fmt.Sprintf(" × %v frames", frames)}
			}
		}
		return Estimate{max(1, satCredits(frames)), fmt.Sprintf("hourglass: 1 credit per frame, %v frames (seconds × fps)", frames)}
	case KindImage:
		count := 1.0
		if n, ok := Number(body, "image_count"); ok && n >= 1 {
			count = math.Min(n, maxImageCount)
		}
		for _, f := range op.priceFields("image") {
			if p := price(f); p != nil {
				return Estimate{satCredits(math.Ceil(p.Credits * count)), fmt.Sprintf("%s (%s: %v credits/image) × %v", p.Source, p.Value, p.Credits, count)}
			}
		}
		if own != nil && own.Per == "item" {
			return Estimate{satCredits(math.Ceil(own.Credits * count)), fmt.Sprintf("%s × %v", own.Source, count)}
		}
		n, src := op.exampleCredits(defaultImagePrice)
		return Estimate{n * int64(count), fmt.Sprintf("%s × %v", src, count)}
	case KindAudio:
		if own != nil && own.Per == "character" {
			prompt, _ := Get(body, "style.prompt")
			s, _ := prompt.(string)
			n := float64(len([]rune(s)))
			return Estimate{max(1, satCredits(math.Ceil(n*own.Credits-1e-9))), fmt.Sprintf("%s × %v characters of style.prompt", own.Source, n)}
		}
	}
	if own != nil && own.Per == "item" {
		return Estimate{int64(math.Ceil(own.Credits)), own.Source}
	}
	n, src := op.exampleCredits(0)
	return Estimate{n, src}
}

func (op *Operation) priceFields(per string) []string {
	var out []string
	for _, p := range op.Prices {
		if p.Field != "" && p.Per == per && !slices.Contains(out, p.Field) {
			out = append(out, p.Field)
		}
	}
	return out
}

// exampleCredits reads the price from the spec's example of
// credits_charged; def when there is none.
func (op *Operation) exampleCredits(def int64) (int64, string) {
	if s := op.Response.Prop("credits_charged"); s != nil && s.Example != "" {
		if n, err := strconv.ParseInt(s.Example, 10, 64); err == nil && (n > 0 || def == 0) {
			return n, fmt.Sprintf("spec: example credits_charged of %s %s", op.Method, op.Path)
		}
	}
	return def, "hourglass: default price"
}

// TierRefusal checks body against the tier rules of op for an account on
// tier. It returns the rule broken and a message, or nil.
func (op *Operation) TierRefusal(tier string, body map[string]any) (*TierRule, string) {
	for i := range op.TierRules {
		r := &op.TierRules[i]
		v, ok := Get(body, r.Field)
		if !ok || v == nil {
			continue
		}
		sv := fmt.Sprint(v)
		if !slices.Contains(r.Values, sv) || slices.Contains(r.Tiers, tier) {
			continue
		}
		return r, fmt.Sprintf("%s %q needs the %s tier; the account is on %s", r.Field, sv, strings.Join(r.Tiers, ", "), tier)
	}
	return nil, ""
}

// MaxEstimate is where a credit estimate saturates: far above any budget,
// low enough that sums of estimates never overflow an int64 (or a SQL
// BIGINT). Converting a larger float64 to int64 would wrap (1e19 frames
// became 1 credit).
const MaxEstimate = int64(1) << 50

// satCredits converts a non-negative credit amount to int64, saturating
// at MaxEstimate (NaN too) instead of wrapping.
func satCredits(f float64) int64 {
	if math.IsNaN(f) || f >= float64(MaxEstimate) {
		return MaxEstimate
	}
	if f < 0 {
		return 0
	}
	return int64(f)
}
