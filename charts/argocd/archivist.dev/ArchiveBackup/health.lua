-- Argo CD health of an ArchiveBackup: Healthy once it is a restore point (Completed) whose
-- verification did not fail; Degraded when the run or its verification failed; Progressing
-- while it runs.
local hs = {status = "Progressing", message = "waiting for the operator"}
if obj.status == nil or obj.status.phase == nil then
  return hs
end
local phase = obj.status.phase
local verification = obj.status.verification
if phase == "Completed" then
  if verification ~= nil and verification.state == "Failed" then
    hs.status = "Degraded"
    hs.message = "restore point, but its verification failed: " .. (verification.message or "")
  else
    hs.status = "Healthy"
    hs.message = "restore point"
    if verification ~= nil and verification.state == "Passed" then
      hs.message = "restore point, verified"
    end
  end
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = obj.status.message or "the backup failed"
else
  hs.message = "backup " .. phase
end
return hs
