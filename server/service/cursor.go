package service

import (
	"encoding/base64"
	"encoding/json"
	"maps"

	"wengang/internal/fault"
)

// cursorVersion is the version of the decisions cursor's format.
const cursorVersion = 1

// cursor is a position in the decisions feed: per county, the last
// sequence the holder has seen. On the wire it is the unpadded URL-safe
// base64 of its JSON, {"v":1,"after":{"371502":12,"371521":3}}; the JSON
// encoder sorts the counties, so equal positions encode alike. It stays
// valid for ever and for any set of counties: a county it does not name
// starts from the beginning.
type cursor struct {
	V     int              `json:"v"`
	After map[string]int64 `json:"after"`
}

// parseCursor reads a cursor; "" is the beginning. Anything this server
// could not have issued is fault.ErrInvalid.
func parseCursor(s string) (map[string]int64, error) {
	if s == "" {
		return map[string]int64{}, nil
	}
	bad := fault.New(fault.ErrInvalid, "cursor: not a cursor this server issued (游标无效)")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.V != cursorVersion {
		return nil, bad
	}
	for county, seq := range c.After {
		if county == "" || seq < 0 {
			return nil, bad
		}
	}
	if c.After == nil {
		c.After = map[string]int64{}
	}
	return c.After, nil
}

// formatCursor writes the cursor of the positions in after.
func formatCursor(after map[string]int64) string {
	b, err := json.Marshal(cursor{V: cursorVersion, After: maps.Clone(after)})
	if err != nil {
		panic(err) // a map of strings to integers always marshals
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
