-- Argo CD health of a BackupPolicy, from its conditions: Degraded when Ready is False (invalid
-- spec, target not found; the message says which), Suspended when Suspended is True, Healthy
-- when Ready is True, Progressing until the operator has reported.
local hs = {status = "Progressing", message = "waiting for the operator"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local ready = nil
local suspended = nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  elseif condition.type == "Suspended" then
    suspended = condition
  end
end
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = ready.message or ready.reason or "not ready"
elseif suspended ~= nil and suspended.status == "True" then
  hs.status = "Suspended"
  hs.message = suspended.message or "suspended"
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "ready"
end
return hs
