-- Argo CD health check for serving.modelrollout.io/ModelRollout (resource.customizations.health).
-- Phases (docs/operator.md, "The ModelRollout resource"): a rollout under way is Progressing, a paused one
-- Suspended, a rolled-back or failed one Degraded (as Argo CD shows an aborted Argo Rollout),
-- Idle and Promoted Healthy once the operator has seen the current spec.
local hs = {status = "Progressing", message = "Waiting for the operator to read the rollout"}
if obj.status == nil or obj.status.phase == nil then
  return hs
end
local s = obj.status
local message = s.message or ""
if obj.metadata.generation ~= nil and s.observedGeneration ~= nil and s.observedGeneration < obj.metadata.generation then
  hs.message = "Waiting for the operator to read generation " .. obj.metadata.generation
  return hs
end
local phase = s.phase
if phase == "Idle" or phase == "Promoted" then
  hs.status = "Healthy"
  hs.message = (phase == "Promoted" and ("Promoted " .. (s.stableVersion or ""))) or ("Serving " .. (s.stableVersion or ""))
  local mode = (obj.spec ~= nil and obj.spec.strategy ~= nil and obj.spec.strategy.trafficMode) or "serverless"
  -- in serverless mode the operator verifies which revisions KServe routes to (status.servingVerified)
  if phase == "Promoted" and mode == "serverless" and s.servingVerified == nil then
    hs.status = "Progressing"
    hs.message = "Promoted " .. (s.stableVersion or "") .. "; waiting for KServe to route it alone"
  end
elseif phase == "Paused" then
  hs.status = "Suspended"
  hs.message = message
elseif phase == "RolledBack" or phase == "Failed" then
  hs.status = "Degraded"
  hs.message = message
else   -- Evaluating, Shadowing, Progressing, Holding, Waiting
  hs.status = "Progressing"
  local weight = s.canaryWeight or 0
  hs.message = phase .. ": " .. (s.canaryVersion or "") .. " at " .. weight .. "%"
  if message ~= "" then
    hs.message = hs.message .. ": " .. message
  end
end
return hs
