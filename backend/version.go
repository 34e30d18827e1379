package backend

import "xenmanager/backend/agentapi"

// AgentAPIVersion is the agent protocol version the manager speaks.
const AgentAPIVersion = agentapi.APIVersion
