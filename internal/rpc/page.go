package rpc

import (
	"encoding/base64"
	"strings"
)

// PageSize reads a request's page size: 0 is def, more than 1000 is 1000,
// a negative size is a bad field.
func PageSize(bad *Fields, n int32, def int) int {
	switch {
	case n < 0:
		bad.Add("page_size", "must not be negative")
		return def
	case n == 0:
		return def
	case n > 1000:
		return 1000
	}
	return int(n)
}

// PageToken returns an opaque page token carrying v for the list named
// scope; ReadPageToken reads it back, refusing a token of another list.
func PageToken(scope, v string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(scope + "\x00" + v))
}

// ReadPageToken is the inverse of PageToken for the list named scope.
func ReadPageToken(scope, token string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", false
	}
	got, v, ok := strings.Cut(string(b), "\x00")
	if !ok || got != scope || v == "" {
		return "", false
	}
	return v, true
}
