-- Argo CD resource actions for ModelRollout (resource.customizations.actions): what may be done now.
local actions = {}
local phase = (obj.status and obj.status.phase) or "Idle"
local rolling = phase == "Evaluating" or phase == "Shadowing" or phase == "Progressing" or phase == "Holding" or phase == "Paused"
actions["promote"] = {disabled = not rolling}
actions["abort"] = {disabled = not rolling}
actions["retry"] = {disabled = phase ~= "RolledBack" and not (phase == "Paused" and obj.status.pausedBy == "policy")}
actions["pause"] = {disabled = not rolling or obj.spec.paused == true}
actions["resume"] = {disabled = obj.spec.paused ~= true}
return actions
