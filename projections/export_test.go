package projections

// EngineReplayAgain exposes engineReplayAgain to the external tests.
var EngineReplayAgain = engineReplayAgain
