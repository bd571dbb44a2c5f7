-- Promote the candidate now: spec.promote names it (the operator checks it is the candidate).
obj.spec.promote = obj.spec.model.version
return obj
