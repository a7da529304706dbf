-- Argo CD health of a RestoreRequest: Healthy when Completed, Degraded when Failed (refused or
-- failed; the message says why), Progressing otherwise.
local hs = {status = "Progressing", message = "waiting for the operator"}
if obj.status == nil or obj.status.phase == nil then
  return hs
end
local phase = obj.status.phase
if phase == "Completed" then
  hs.status = "Healthy"
  hs.message = obj.status.message or "restored"
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = obj.status.message or "the restore failed"
else
  hs.message = "restore " .. phase
end
return hs
