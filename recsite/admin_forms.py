"""Admin form pieces shared by the apps."""

from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet


class ArmsFormSet(BaseInlineFormSet):
    """Experiment arms edited inline (a bulletin's variants, a placement's arms): when there
    are any, their shares add up to 100 and at most one is the control; with
    `control_required`, exactly one. `noun` names the arms in the messages."""

    noun = "Variant"
    control_required = False

    def clean(self) -> None:
        super().clean()
        kept = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        if not kept:
            return
        total = sum(data.get("share") or 0 for data in kept)
        if total != 100:
            raise ValidationError(f"{self.noun} shares add up to {total}; they must add up to 100.")
        controls = sum(1 for data in kept if data.get("is_control"))
        if controls > 1:
            raise ValidationError(f"Only one {self.noun.lower()} can be the control.")
        if self.control_required and not controls:
            raise ValidationError(
                f"Mark one {self.noun.lower()} as the control: the one the others are compared to."
            )

    def save_existing_objects(self, commit: bool = True) -> list:
        # The database holds one control at a time (a unique constraint), and the arms are
        # saved in order: making a later arm the control, or deleting the control while another
        # takes its place, would break it midway. The arms that stop being the control let go
        # of it first, in the same transaction.
        if commit:
            leaving = [
                form.instance.pk
                for form in self.initial_forms
                if form.instance.pk
                and form.initial.get("is_control")
                and (self._should_delete_form(form) or not form.cleaned_data.get("is_control"))
            ]
            self.model.objects.filter(pk__in=leaving).update(is_control=False)
        return super().save_existing_objects(commit)
