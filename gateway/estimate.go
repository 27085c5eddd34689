package gateway

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// EstimateCredits returns the credits a create is expected to cost, before
// it is sent: what the tenant's budget is checked against (the estimate is
// reserved, then corrected to what Magic Hour charged). It follows the
// emulator's price model, which follows the API's examples:
//
//   - video: ceil(end_seconds - start_seconds) × round(fps), with
//     end_seconds defaulting to start_seconds + 5 and fps to 30 (lowered by
//     max_fps_limit);
//   - image: the spec's example credits_charged of the tool (5 when none)
//     × image_count (1..16);
//   - audio: one credit per 10 characters of style.prompt (at least 1);
//   - anything else: the spec's example credits_charged, else 0.
//
// Magic Hour's real prices vary by plan and model; the estimate is a
// budget guard, not an invoice.
func EstimateCredits(tool string, params json.RawMessage) int64 {
	op := catalog.Lookup(tool)
	if op == nil {
		return 0
	}
	var body map[string]any
	_ = json.Unmarshal(params, &body)
	switch op.Kind {
	case catalog.KindVideo:
		start, _ := numField(body, "start_seconds")
		end, ok := numField(body, "end_seconds")
		if !ok {
			end = start + 5
		}
		fps := 30.0
		if f, ok := numField(body, "fps"); ok && f > 0 {
			fps = f
		}
		if f, ok := numField(body, "max_fps_limit"); ok && f > 0 && f < fps {
			fps = f
		}
		secs := math.Max(end-start, 0.1)
		return max(1, int64(math.Ceil(secs)*math.Round(math.Max(fps, 1))))
	case catalog.KindImage:
		count := 1.0
		if n, ok := numField(body, "image_count"); ok && n >= 1 {
			count = math.Min(n, 16)
		}
		return exampleCredits(op, 5) * int64(count)
	case catalog.KindAudio:
		prompt := ""
		if st, ok := body["style"].(map[string]any); ok {
			prompt, _ = st["prompt"].(string)
		}
		n := int64(len([]rune(prompt)))
		return max(1, (n+9)/10)
	}
	return exampleCredits(op, 0)
}

func numField(body map[string]any, name string) (float64, bool) {
	f, ok := body[name].(float64)
	return f, ok
}

func exampleCredits(op *catalog.Operation, def int64) int64 {
	if s := op.Response.Prop("credits_charged"); s != nil && s.Example != "" {
		if n, err := strconv.ParseInt(s.Example, 10, 64); err == nil && (n > 0 || def == 0) {
			return n
		}
	}
	return def
}
