from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("checklists", "0004_variables_per_run")]

    operations = [
        migrations.AddField(model_name="verificationresult", name="attempts", field=models.PositiveSmallIntegerField(default=1)),
        migrations.AddField(model_name="verificationresult", name="claimed_by", field=models.CharField(blank=True, max_length=200)),
    ]
