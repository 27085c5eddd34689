package gateway

import (
	"encoding/json"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// EstimateCredits returns the credits a create is expected to cost, before
// it is sent: what the tenant's budget is checked against (the estimate is
// reserved, then corrected to what Magic Hour charged). It is the catalog's
// credit model (catalog.Operation.EstimateCredits, which says where each
// price comes from), shared with the emulator.
func EstimateCredits(tool string, params json.RawMessage) int64 {
	return estimateCredits(catalog.Default(), tool, params)
}

// estimateCredits is EstimateCredits with the gateway's catalog in use.
func (g *Gateway) estimateCredits(tool string, params json.RawMessage) int64 {
	return estimateCredits(g.Catalog(), tool, params)
}

func estimateCredits(cat *catalog.Catalog, tool string, params json.RawMessage) int64 {
	op := cat.Lookup(tool)
	if op == nil {
		return 0
	}
	body := catalog.DecodeBody(params)
	if body == nil {
		body = map[string]any{}
	}
	return op.EstimateCredits(body).Credits
}
