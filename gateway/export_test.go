package gateway

// SetAfterCreate makes g call f between a create's answer and recording it
// (tests: webhooks that outrun the create's answer).
func SetAfterCreate(g *Gateway, f func(upstreamID string)) { g.afterCreate.Store(&f) }

// UnauthBodiesInFlight is how many unauthenticated bodies are being read.
func UnauthBodiesInFlight(g *Gateway) int { return len(g.unauthSlots) }
