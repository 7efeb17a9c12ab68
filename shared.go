package laf

import "sync"

// Shared is a concurrency-safe key-value store, Laf's cloud.shared. Every
// method is safe to call from any goroutine. Each Endpoint has its own
// store unless WithShared gives several endpoints (and plain HTTP handlers)
// the same one.
//
// Shared lives in one process. To reach sockets on other processes, use
// the Endpoint's send methods with a Broker, not values kept here.
//
// The zero value is not ready for use; call NewShared.
type Shared struct {
	mu sync.RWMutex
	m  map[string]any
}

// NewShared returns an empty store.
func NewShared() *Shared {
	return &Shared{m: make(map[string]any)}
}

// Get returns the value stored under key and whether there was one.
func (s *Shared) Get(key string) (any, bool) {
	s.mu.RLock()
	v, ok := s.m[key]
	s.mu.RUnlock()
	return v, ok
}

// Set stores v under key, replacing any earlier value.
func (s *Shared) Set(key string, v any) {
	s.mu.Lock()
	s.m[key] = v
	s.mu.Unlock()
}

// Delete removes key. Deleting a missing key does nothing.
func (s *Shared) Delete(key string) {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

// Update atomically replaces the value under key with fn's result. fn gets
// the current value and whether there was one; it returns the new value
// and whether to keep it (false deletes the key). Update returns what fn
// returned. No other method of s runs while fn runs, so fn must be quick
// and must not call s.
//
//	s.Update("visits", func(old any, _ bool) (any, bool) {
//		n, _ := old.(int)
//		return n + 1, true
//	})
func (s *Shared) Update(key string, fn func(old any, ok bool) (any, bool)) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[key]
	v, keep := fn(old, ok)
	if keep {
		s.m[key] = v
	} else {
		delete(s.m, key)
	}
	return v, keep
}

// GetOrSet returns the value under key if there is one (loaded is true);
// otherwise it stores v and returns it (loaded is false).
func (s *Shared) GetOrSet(key string, v any) (actual any, loaded bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[key]; ok {
		return old, true
	}
	s.m[key] = v
	return v, false
}

// Range calls fn for each key and value until fn returns false. It works
// on a snapshot taken when it starts, so fn may call any method of s.
// The order is unspecified.
func (s *Shared) Range(fn func(key string, v any) bool) {
	s.mu.RLock()
	keys := make([]string, 0, len(s.m))
	vals := make([]any, 0, len(s.m))
	for k, v := range s.m {
		keys = append(keys, k)
		vals = append(vals, v)
	}
	s.mu.RUnlock()
	for i, k := range keys {
		if !fn(k, vals[i]) {
			return
		}
	}
}

// Len returns the number of keys.
func (s *Shared) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}
