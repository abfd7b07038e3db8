// Package contact is the domain of a workspace's audience: contacts (one per phone number in a
// workspace), their opt-out, and contact groups. Value objects with validating constructors,
// the events, and pure decide/evolve functions; no I/O.
package contact
